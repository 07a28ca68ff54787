"""Tag, revert and bisect in a real browser, from the version panel the timeline opens."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from continust.log.store import NewEvent, append
from continust.models import Event, Tag, Version
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tag_revert_and_bisect_from_the_panel(page: Page, pricing):
    first, second = append(
        pricing,
        [
            NewEvent(type="flag.set", payload={"beta": True}),
            NewEvent(type="flag.set", payload={"beta": False}),
        ],
    ).versions
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/?v={first.pk}")
    page.fill("#panel input[name=tag]", "beta-on")
    page.click("#panel button:text('Tag…')")
    expect(page.locator("#confirm-title")).to_contain_text(f"Tag version {first.pk} as beta-on?")
    page.click("button:text('Tag it')")
    expect(page.locator("li.tl-row .tag-label")).to_have_text(["beta-on"])
    assert Tag.objects.get(name="beta-on").version_id == first.pk

    page.goto(f"/p/demo/s/{pricing.pk}/?v={second.pk}")
    page.click("#panel >> text=revert…")
    expect(page.locator(".confirm-facts")).to_contain_text("~ /beta: false -> true")
    page.click("button:text('Revert')")
    made = Version.objects.filter(stream=pricing).order_by("-id").first()
    expect(page.locator("#panel h2")).to_have_text(f"Version {made.pk}")
    assert Event.objects.get(pk=made.event_id).causation_id == second.event.id

    page.click("text=Bisect…")
    page.fill("#id_good", "beta-on")
    page.fill("#id_bad", "main~1")
    page.fill("#id_pointer", "/beta")
    page.fill("#id_expect", "true")
    page.click("button:text('Find the first bad version')")
    expect(page.locator("#bisect-result h2")).to_have_text(
        f"Version {second.pk} is the first bad version"
    )

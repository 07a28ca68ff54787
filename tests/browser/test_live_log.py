"""All events and a stream's page, live through the feed, and the time slider, in Chromium."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from continust.log.store import NewEvent, append
from continust.models import OpenFeed
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_all_events_adds_appended_events_live(page: Page, pricing):
    log_in(page)
    page.goto("/p/demo/events/?stream=pricing")
    expect(page.locator("#live-status")).to_contain_text("Live", timeout=20_000)
    before = page.locator("#log-rows tr").count()
    append(pricing, [NewEvent(type="live.<b>added</b>", payload={"live": 1}, actor="<i>x</i>")])
    row = page.locator("#log-rows tr.new")
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_contain_text("live.<b>added</b>")  # shown as text, never as markup
    expect(page.locator("#log-rows tr")).to_have_count(before + 1)
    assert page.locator("#log-rows b").count() == 0


def test_a_refused_feed_says_live_updates_stopped(page: Page, pricing, settings):
    settings.CONTINUST_FEED_MAX_OPEN = 1
    log_in(page)
    page.goto("/p/demo/events/?stream=pricing")
    expect(page.locator("#live-status")).to_contain_text("Live:", timeout=20_000)
    second = page.context.new_page()  # the same user: its feed is one too many
    second.goto(page.url)
    expect(second.locator("#live-status")).to_contain_text("Live updates stopped", timeout=20_000)
    second.close()
    page.goto("about:blank")  # let the first feed end before the test database goes
    deadline = time.monotonic() + 15
    while OpenFeed.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not OpenFeed.objects.exists()


def test_the_time_slider_highlights_the_version_of_the_moment(page: Page, pricing):
    first = append(pricing, [NewEvent(type="slider.one", payload={"s": 1})]).versions[0]
    between = timezone.now()
    append(pricing, [NewEvent(type="slider.two", payload={"s": 2})])
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/")
    slider = page.locator("#as-of-range")
    expect(slider).to_be_visible()
    slider.evaluate(
        "(el, value) => { el.value = value; el.dispatchEvent(new Event('input')); }",
        str(int(between.timestamp() * 1000)),
    )
    marked = page.locator(f"li.tl-row.as-of-mark[data-version='{first.pk}']")
    expect(marked).to_have_count(1, timeout=20_000)
    expect(page.locator("#as-of-label")).to_contain_text(f"v{first.pk}")

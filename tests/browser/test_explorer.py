"""The explorer in a real browser: browse, scroll, inspect, compare, follow causes, fork, merge."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from continust.log.store import NewEvent, append
from continust.models import Branch, Stream, Version
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
XSS = '<script>window.__xss=1;alert(1)</script>"><svg onload="window.__xss=2;alert(2)">'


def test_browse_scroll_and_open_a_version(page: Page, pricing):
    for n in range(150):
        append(pricing, [NewEvent(type="tick", payload={"n": n}, actor="robot")])
    total = Version.objects.filter(stream=pricing).count()
    log_in(page)
    page.click("text=Demo: pricing, accounts, sensors and inventory")
    page.fill("#stream-search", "pric")
    expect(page.locator("#stream-list a")).to_have_count(1)
    page.click("#stream-list >> text=pricing")
    rows = page.locator("li.tl-row")
    expect(rows).to_have_count(100)
    page.locator(".more").first.scroll_into_view_if_needed()
    expect(rows).to_have_count(total)
    page.locator("li.tl-row .tl-link").last.click()
    first = Version.objects.filter(stream=pricing).order_by("id").first()
    expect(page.locator("#panel h2")).to_have_text(f"Version {first.pk}")
    expect(page.locator("#panel")).to_contain_text("pricing.created")
    assert f"v={first.pk}" in page.url.split("?")[1].split("&")


def test_compare_with_the_keyboard_and_download_the_patch(page: Page, pricing):
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/")
    links = page.locator("li.tl-row .tl-link")
    links.last.focus()
    page.keyboard.press("a")
    expect(page.locator("#compare-bar")).to_contain_text("A = v")
    links.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("b")
    expect(page.locator("#compare-bar .primary")).to_be_visible()
    page.click("#compare-bar .primary")
    expect(page.locator("h1")).to_contain_text("Compare")
    expect(page.locator("table.diff")).to_contain_text("/trial_days")
    expect(page.locator("text=Merge base")).to_be_visible()
    if os.environ.get("CONTINUST_SCREENSHOTS") == "1":  # refreshes docs/diff.png
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(DOCS / "diff.png"), full_page=False)
    with page.expect_download() as download:
        page.click("text=JSON Patch")
    assert download.value.suggested_filename.endswith(".json-patch.json")


def test_follow_a_causation_link_across_streams(page: Page, demo):
    bob = Stream.objects.get(project=demo, name="accounts/bob")
    credit = Version.objects.filter(stream=bob, event__type="account.credited").first()
    log_in(page)
    page.goto(f"/p/demo/s/{bob.pk}/?v={credit.pk}")
    page.click("#panel >> text=accounts/alice: account.debited")
    expect(page.locator("h1")).to_contain_text("accounts/alice")
    expect(page.locator("#panel")).to_contain_text("account.debited")
    page.click("#panel >> text=causation view")
    expect(page.locator("svg.causation")).to_be_visible()
    expect(page.locator("svg.causation")).to_contain_text("ledger: ledger.entry")


def test_fork_then_merge_with_a_conflict(page: Page, pricing):
    main = Branch.objects.get(stream=pricing, name="main").head
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/?v={main.pk}")
    page.fill("#panel input[name=name]", "experiment")
    page.click("#panel button:text('Fork')")
    expect(page.locator(".branches")).to_contain_text("experiment")
    append(
        pricing, [NewEvent(type="trial.changed", payload={"trial_days": 5})], branch="experiment"
    )
    append(pricing, [NewEvent(type="trial.changed", payload={"trial_days": 9})])
    page.click("text=Merge branches…")
    page.select_option("#id_source", "experiment")
    page.select_option("#id_into", "main")
    page.click("button:text('Preview')")
    expect(page.locator(".conflict-title")).to_contain_text("1 conflict")
    page.check("input[name='resolve:/trial_days'][value='5']")
    page.click("button.primary")
    expect(page.locator(".messages")).to_contain_text("Merged experiment into main")
    assert Branch.objects.get(stream=pricing, name="main").head.state.data["trial_days"] == 5


def test_an_xss_canary_never_runs(page: Page, demo):
    from continust.log.projects import create_stream

    stream = create_stream(demo, "canary")
    (version,) = append(stream, [NewEvent(type=XSS, payload={XSS: XSS}, actor=XSS)]).versions
    # The project page shows event types as the built-in projection counted them.
    from continust.projections import control
    from continust.projections.runner import run_projection

    run_projection(control.get_projection(demo, "event_counts").pk, foreground=True)
    log_in(page)
    for url in [
        "/p/demo/",
        "/p/demo/projections/",
        f"/p/demo/s/{stream.pk}/",
        f"/p/demo/s/{stream.pk}/?v={version.pk}",
        f"/p/demo/events/{version.event.id}/",
        "/p/demo/?q=canary",
    ]:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None
    page.goto(f"/p/demo/s/{stream.pk}/")
    page.locator("li.tl-row .tl-link").first.click()
    expect(page.locator("#panel")).to_contain_text("<script>")
    assert page.evaluate("window.__xss") is None

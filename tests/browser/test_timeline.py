"""The timeline in a real browser: endless scrolling in its box, the selection and picks
the address holds, no inline style after Back, the live tail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import Stream, Version
from explorer.placement import STEP, place_new_versions
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_scrolling_the_box_loads_every_page_down_to_the_root(page: Page, demo):
    stream = create_stream(demo, "long")
    append(stream, [NewEvent(type=f"t{n % 3}", payload={"n": n}) for n in range(2000)])
    place_new_versions(stream)  # as the background task does: a page places STEP at most
    ids = list(Version.objects.filter(stream=stream).values_list("id", flat=True))
    log_in(page)
    page.goto(f"/p/demo/s/{stream.pk}/")
    url = page.url
    rows = page.locator("li.tl-row")
    expect(rows).to_have_count(100)
    box = page.locator("#timeline")
    for _ in range(60):
        if rows.count() == len(ids):
            break
        box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
        page.wait_for_timeout(250)
    expect(rows).to_have_count(len(ids))
    assert page.url == url  # no reload, no "Older versions…" click
    shown = rows.evaluate_all("rs => rs.map(r => Number(r.dataset.version))")
    assert sorted(shown) == sorted(ids)
    assert len(set(shown)) == len(shown)
    widths = set(
        rows.evaluate_all("rs => rs.map(r => Math.round(r.getBoundingClientRect().width))")
    )
    assert len(widths) == 1, widths
    sections = page.locator("#timeline section.tl-page")
    assert len(set(sections.evaluate_all("s => s.map(e => e.getBoundingClientRect().width)"))) == 1


def marked(page: Page, css: str) -> list[int]:
    return page.locator(f"li.tl-row{css}").evaluate_all(
        "rs => rs.map(r => Number(r.dataset.version))"
    )


def test_the_address_is_the_one_source_of_selection_and_picks(page: Page, pricing):
    versions = list(Version.objects.filter(stream=pricing).order_by("-id")[:4])
    v13, v12, a, b = versions
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/?v={v13.pk}")
    assert marked(page, ".selected") == [v13.pk]
    page.locator(f"li.tl-row[data-version='{v12.pk}'] .tl-link").click()
    expect(page.locator("#panel h2")).to_have_text(f"Version {v12.pk}")
    expect(page.locator("li.tl-row.selected")).to_have_count(1)
    assert marked(page, ".selected") == [v12.pk]
    page.locator(f"li.tl-row[data-version='{a.pk}'] .pick-a").click()
    expect(page.locator("li.tl-row.picked-a")).to_have_count(1)
    page.locator(f"li.tl-row[data-version='{b.pk}'] .pick-b").click()
    expect(page.locator("li.tl-row.picked-b")).to_have_count(1)
    assert marked(page, ".picked-a") == [a.pk]
    assert marked(page, ".picked-b") == [b.pk]
    assert marked(page, ".selected") == [v12.pk]
    query = page.url.split("?", 1)[1].split("&")
    assert {f"v={v12.pk}", f"a={a.pk}", f"b={b.pk}"} <= set(query)
    page.go_back()
    expect(page.locator("li.tl-row.picked-b")).to_have_count(0)
    assert marked(page, ".picked-a") == [a.pk]
    assert marked(page, ".selected") == [v12.pk]
    page.go_back()
    page.go_back()
    expect(page.locator("li.tl-row.selected")).to_have_count(1)
    assert marked(page, ".selected") == [v13.pk]
    expect(page.locator("#panel h2")).to_have_text(f"Version {v13.pk}")
    assert marked(page, ".picked-a") == []


def test_no_inline_style_after_back(page: Page, pricing):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "style-src" in message.text
            else None
        ),
    )
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/")
    links = page.locator("li.tl-row .tl-link")
    for index in range(4):
        links.nth(index).click()
        expect(page.locator("#panel h2")).to_be_visible()
    page.locator("li.tl-row .pick-a").nth(1).click()
    page.wait_for_url("**a=*")
    page.locator("li.tl-row .pick-b").nth(0).click()
    page.wait_for_url("**b=*")
    for _ in range(5):
        page.go_back()
        page.wait_for_load_state("networkidle")
    page.go_forward()
    page.wait_for_load_state("networkidle")
    assert violations == []
    assert page.locator("[style]").count() == 0


def test_the_live_tail_shows_appended_versions_without_a_reload(page: Page, pricing):
    log_in(page)
    page.goto(f"/p/demo/s/{pricing.pk}/")
    page.evaluate("window.__same_document = true")
    before = page.locator("li.tl-row").count()
    (version,) = append(pricing, [NewEvent(type="tail.appended", payload={"tail": 1})]).versions
    row = page.locator(f"li.tl-row[data-version='{version.pk}']")
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_contain_text("tail.appended")
    expect(page.locator("li.tl-row")).to_have_count(before + 1)
    assert page.evaluate("window.__same_document") is True
    assert page.locator("li.tl-row").first.get_attribute("data-version") == str(version.pk)


def test_a_stream_still_being_placed_says_so_and_the_tail_draws_the_rest(page: Page, demo):
    stream = create_stream(demo, "imported")
    versions = append(
        stream, [NewEvent(type="t", payload={"n": n}) for n in range(3 * STEP)]
    ).versions
    log_in(page)
    page.goto(f"/p/demo/s/{stream.pk}/")
    page.evaluate("window.__same_document = true")
    rows = page.locator("li.tl-row")
    assert rows.first.get_attribute("data-version") == str(versions[STEP - 1].pk)
    expect(page.locator(".placing")).to_contain_text(f"Placing {2 * STEP:,} newer versions")
    # The live tail's looks place the rest (a step each) and draw the newest page.
    newest = page.locator(f"li.tl-row[data-version='{versions[-1].pk}']")
    expect(newest).to_have_count(1, timeout=20_000)
    expect(page.locator(".placing")).to_have_count(0)
    assert rows.first.get_attribute("data-version") == str(versions[-1].pk)
    assert page.evaluate("window.__same_document") is True


# CONTINUST_SCREENSHOTS=1 refreshes docs/timeline.png; a plain run leaves docs alone.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "timeline.png"


def test_the_demos_long_stream_with_its_legend(page: Page, demo):
    stream = Stream.objects.get(project=demo, name="sensors/greenhouse")
    newest = Version.objects.filter(stream=stream).order_by("-id")
    selected, picked = newest[2], newest[6]
    log_in(page)
    page.goto(f"/p/demo/s/{stream.pk}/?v={selected.pk}&a={picked.pk}")
    expect(page.locator("#panel h2")).to_have_text(f"Version {selected.pk}")
    assert marked(page, ".selected") == [selected.pk]
    assert marked(page, ".picked-a") == [picked.pk]
    expect(page.locator(".legend")).to_contain_text("dashed line")
    expect(page.locator("li.tl-row.released")).to_have_count(1)
    assert page.locator("[style]").count() == 0
    if os.environ.get("CONTINUST_SCREENSHOTS"):
        page.set_viewport_size({"width": 1440, "height": 1000})
        page.screenshot(path=str(SCREENSHOT))

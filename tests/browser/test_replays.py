"""A replay in a real browser, run by a real worker: start it and watch the bar reach 100%."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_start_a_replay_and_watch_the_bar_reach_100_percent(page: Page, start_worker):
    owner = User.objects.create_user("demo", password="demo")
    stream = create_stream(create_project("acme", "Acme", owner=owner), "pricing")
    for first in range(0, 300, 100):
        append(stream, [NewEvent("price.set", {"price": n}) for n in range(first, first + 100)])
    start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="20", CONTINUST_REPLAY_CHUNK_DELAY_MS="150")
    log_in(page)
    page.goto(f"/p/acme/s/{stream.pk}/replays/")
    page.fill("#id_end", "main")
    page.click("text=Start the replay")
    page.wait_for_url("**/replays/*/")
    seen = set()
    deadline = time.monotonic() + 90
    while "100%" not in seen and time.monotonic() < deadline:
        seen.add(page.locator("#replay-percent").inner_text())
        page.wait_for_timeout(100)
    assert "100%" in seen
    assert seen - {"0%", "100%"}, "the bar should have shown progress on the way"
    expect(page.locator("#replay-bar")).to_have_attribute("value", "300")
    expect(page.locator("#replay-progress")).to_contain_text("reproduced the original state")
    expect(page.locator("#replay-progress")).not_to_have_attribute("hx-trigger", "every 1s")

"""Retention in a real browser: set a policy, dry run, compact, see the collapsed node."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Compaction, ReleasedRun
from continust.retention import compaction
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# CONTINUST_SCREENSHOTS=1 refreshes the screenshot in docs/; a plain run leaves docs alone.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "retention.png"


def test_set_a_policy_dry_run_compact_and_see_the_collapsed_node(page: Page):
    owner = User.objects.create_user("demo", password="demo")
    stream = create_stream(create_project("acme", "Acme", owner=owner), "pricing")
    append(stream, [NewEvent("price.set", {"price": n}) for n in range(40)])
    log_in(page)
    page.goto(f"/p/acme/s/{stream.pk}/")
    page.click("#retention-link")

    page.check("input[value=ephemeral]")
    expect(page.locator("#id_snapshot_every")).to_be_hidden()
    page.fill("#id_horizon_versions", "3")
    page.click("text=Save the policy")
    expect(page.locator("#retention-policy")).to_have_text("ephemeral: keeps the newest 3 versions")

    page.click("#dry-run")
    expect(page.locator("#plan-released")).to_have_text("37")
    expect(page.locator(".plan-runs tbody tr")).to_have_count(1)
    assert "/plan/" not in page.url, "the dry run loads into the page"

    page.click("#compact-now")  # asks first, in place, naming what will go
    expect(page.locator("#confirm-slot .confirm-facts")).to_contain_text("releases 37 version(s)")
    assert not Compaction.objects.exists()
    page.click("#confirm-slot button[type=submit]")
    expect(page.locator("#compactions .status")).to_have_text("pending")
    compaction.run(Compaction.objects.get().pk)  # what the worker would do
    expect(page.locator("#compactions .status")).to_have_text("done")  # the page polls

    run = ReleasedRun.objects.get()
    page.goto(f"/p/acme/s/{stream.pk}/?v={run.first_id + 10}")
    node = page.locator("svg.graph rect.node.released")
    expect(node).to_have_count(1)
    expect(node).to_have_attribute("data-versions", "37")
    expect(page.locator(".tl-row.released")).to_contain_text("37 versions released")
    expect(page.locator("svg.graph circle.node")).to_have_count(3)
    expect(page.locator("#panel .released-note")).to_contain_text(
        f"compaction #{run.compaction_id}"
    )
    page.click("#retention-summary summary")
    expect(page.locator("#retention-summary .compactions")).to_be_visible()
    if os.environ.get("CONTINUST_SCREENSHOTS") == "1":
        page.screenshot(path=str(SCREENSHOT), full_page=True)

"""A review in a real browser: open it, comment on a diff path, request changes, approve,
export the audit report and check its digest as a third party would, with ``verify``."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from continust.audit import reviews
from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import fork
from continust.models import Role
from tests.browser.conftest import log_in
from tests.conftest import put
from tests.thirdparty import check_export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = '<script>window.__xss=1;alert(1)</script>"><img src=x onerror="window.__xss=2;alert(2)">'
PATH = "/pricing/tiers/2/price"


@pytest.fixture
def pricing():
    """main: v1 ─ v2; q3 (forked at v1): v3 raises tier 2's price."""
    alice = User.objects.create_user("alice", password="alice-password-1")
    rita = User.objects.create_user("rita", password="rita-password-1")
    project = create_project("acme", "Acme", owner=alice)
    add_member(project, rita, Role.REVIEWER)
    # Rita opens and approves: this team lets the opener approve (the default rule, that
    # someone else approves, is tested in tests/test_review_views.py).
    reviews.set_self_approval(project, True, actor="alice")
    stream = create_stream(project, "pricing")
    tiers = [{"name": n, "price": p} for n, p in (("s", 5), ("m", 10), ("l", 20))]
    v1, v2 = put(stream, {"pricing": {"tiers": tiers}}, {"owner": "alice"})
    fork(stream, "q3", v1)
    put(stream, {"pricing": {"tiers": [*tiers[:2], {"name": "l", "price": 25}]}}, branch="q3")
    return stream


def download(page: Page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    with open(info.value.path(), "rb") as handle:
        return handle.read()


def test_review_comment_decide_and_verify_the_report(page: Page, pricing, tmp_path):
    log_in(page, "rita", "rita-password-1")
    page.goto("/p/acme/reviews/")
    page.select_option("#id_stream", label="pricing")
    page.fill("#id_branch", "q3")
    page.fill("#id_title", "Q3 prices")
    page.click("text=Open the review")
    expect(page.locator("h1")).to_contain_text("Q3 prices")
    expect(page.locator("#checklist")).to_contain_text("0 of 1 path checked")
    row = page.locator("tr.path-comments").first
    row.locator("summary").click()
    row.locator("textarea").fill(f"Why 25? {XSS}")
    row.locator("button[type=submit]").click()
    comment = page.locator("#checklist .comment").first
    expect(comment).to_contain_text("Why 25? <script>")
    assert page.evaluate("window.__xss") is None

    page.fill("#decisions textarea", "Needs a reason")
    page.click("text=Request changes")
    expect(page.locator("h1 .status")).to_have_text("changes requested")
    page.locator(f"button[aria-label='check {PATH}']").click()
    expect(page.locator("#checklist")).to_contain_text("1 of 1 path checked")
    page.click("#decisions button[value=approve]")
    expect(page.locator("h1 .status")).to_have_text("approved")

    page.click("a.report-html")
    expect(page.locator(".verdict")).to_contain_text("verify: ok")
    expect(page.locator(".audit-report")).to_contain_text("request_changes: Needs a reason")
    assert page.evaluate("window.__xss") is None
    report = json.loads(download(page, "a.report-json"))
    assert download(page, "a.report-pdf").startswith(b"%PDF")
    export = download(page, "a.export")
    stated = report["integrity"]
    assert hashlib.sha256(export).hexdigest() == stated["export"]["sha256"]
    assert stated["export"]["sha256"] in page.locator(".export-sha256").inner_text()

    checked = check_export(export, "acme", tmp_path)
    assert checked["ok"] is True
    assert checked["heads"] == {c["stream"]: c["head"] for c in stated["chains"]}
    decisions = report["reviews"][0]["decisions"]
    assert decisions["rita"]["payload"]["decision"] == "approve"

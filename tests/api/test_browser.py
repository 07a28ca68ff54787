"""The docs page and the Tokens page in Debian's Chromium, with every outside request blocked."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = os.environ.get("CONTINUST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(live_server, server_sessions_closed):
    """A page that may load only from the live server; anything else fails the test."""
    outside: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )

        def guard(route):
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        opened = context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on("dialog", lambda dialog: (errors.append(dialog.message), dialog.dismiss()))
        yield opened
        browser.close()
    assert outside == [], f"the page reached outside the server: {outside}"
    assert errors == [], errors


def test_the_docs_page_lists_every_operation_offline(page):
    page.goto("/api/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    paths = {s.replace("\u200b", "") for s in summaries}
    assert "/api/projects/{slug}/streams/{name}/events" in paths
    assert len(summaries) >= 18


def test_a_token_is_created_shown_once_and_revoked(alice, project, page):
    # alice and project first: made inside Playwright's loop, they would use a second connection.
    page.goto("/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("button[type=submit]")
    page.goto("/tokens/")
    page.fill("#id_name", "<b>deploy</b> bot")
    page.check("input[name=projects]")
    page.check("input[name=scope][value=write]")
    page.click("text=Create token")
    secret = page.locator("#new-token code").inner_text()
    assert re.fullmatch(r"ctn_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    assert page.locator("td", has_text="<b>deploy</b> bot").count() == 1
    page.goto("/tokens/")
    assert secret not in page.content()
    page.click("text=Revoke")
    page.wait_for_selector("text=This cannot be undone")
    page.click("button:has-text('Revoke “')")
    page.wait_for_selector("text=is revoked")
    # The page, not the ORM: under Playwright's loop the ORM would open a second connection.
    assert page.locator("tr.revoked").count() == 1

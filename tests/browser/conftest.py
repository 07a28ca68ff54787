"""Playwright driving Debian's Chromium against a live server."""

from __future__ import annotations

import os
from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect, sync_playwright

from continust.models import Project, Stream

# Playwright's sync API runs an event loop in this thread; Django's ORM use from the
# test body is still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# CI shares two cores with PostgreSQL, Redis and a Celery worker: allow slow answers.
expect.set_options(timeout=15_000)

CHROMIUM = os.environ.get("CONTINUST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(autouse=True)
def short_feeds(settings) -> None:
    """Live feeds (a stream's page, All events) end after a few seconds and the browser
    reconnects: a feed left open by a closed page ends before the test database goes."""
    settings.CONTINUST_FEED_SECONDS = 3


@pytest.fixture
def page(browser: Browser, live_server) -> Page:
    """A fresh page that fails the test on any console error or dialog (an XSS canary)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    yield opened
    context.close()
    assert errors == [], errors


def log_in(page: Page, username: str = "demo", password: str = "demo") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


@pytest.fixture
def demo() -> Project:
    """The small demo project (the full one runs a pipeline in-process, whose event loop
    cannot start under the session's Playwright)."""
    call_command("seed_demo", "--small", stdout=StringIO())
    return Project.objects.get(slug="demo")


@pytest.fixture
def pricing(demo: Project) -> Stream:
    return Stream.objects.get(project=demo, name="pricing")

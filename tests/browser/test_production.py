"""The production command set in a real browser: gunicorn with debug off serving the
collected, hashed, compressed static files through WhiteNoise.

The server runs the real settings (``continust.settings``, not the test settings) on the
embedded defaults in a fresh var directory: migrate, ``seed_demo --small``,
``collectstatic``, then gunicorn, as the README's production section says. Plain HTTP on
the loopback, so the session cookie may travel without TLS (``DJANGO_SECURE_COOKIES=0``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def production_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "CONTINUST_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="continust.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECURE_COOKIES="0",
        CONTINUST_VAR_DIR=str(var_dir),
    )
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("production")
    env = production_env(var_dir)
    for step in (
        ["migrate", "--no-input", "-v0"],
        ["seed_demo", "--small"],
        ["collectstatic", "--no-input", "-v0"],
    ):
        subprocess.run(
            [sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True, timeout=300
        )
    port = free_port()
    log = (var_dir / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "continust.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            "--threads",
            "8",
            "--graceful-timeout",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=5).close()
            break
        except OSError:
            if gunicorn.poll() is not None or time.monotonic() > deadline:
                gunicorn.kill()
                pytest.fail((var_dir / "gunicorn.log").read_text())
            time.sleep(0.5)
    yield url
    gunicorn.terminate()
    try:  # a live feed the page still holds ends at the graceful timeout
        gunicorn.wait(timeout=30)
    except subprocess.TimeoutExpired:
        gunicorn.kill()
        gunicorn.wait(timeout=10)
    log.close()


@pytest.fixture
def prod_page(browser: Browser, server: str) -> Iterator[tuple[Page, list[Response]]]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=server)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    statics: list[Response] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("response", lambda r: statics.append(r) if "/static/" in r.url else None)
    yield opened, statics
    context.close()
    assert errors == [], errors


def test_css_and_js_load_and_the_explorer_works(prod_page):
    page, statics = prod_page
    page.goto("/accounts/login/")
    # The stylesheet applies (the browser's body margin is 8px, continust.css makes it 0)...
    expect(page.locator("body")).to_have_css("margin-top", "0px")
    expect(page.locator("body")).to_have_css("font-size", "14px")
    # ... and htmx runs.
    page.wait_for_function("() => typeof window.htmx === 'object'")
    names = {r.url.rsplit("/", 1)[1] for r in statics}
    assert any(re.fullmatch(r"continust\.[0-9a-f]{12}\.css", name) for name in names), names
    assert any(re.fullmatch(r"explorer\.[0-9a-f]{12}\.js", name) for name in names), names
    for response in statics:
        assert response.status == 200, response.url
        headers = response.headers
        assert "max-age=315360000" in headers.get("cache-control", ""), response.url
        assert headers.get("content-encoding") in {"gzip", "br"}, response.url

    page.fill("#id_username", "demo")
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.click("text=Demo: pricing, accounts, sensors and inventory")
    page.click("#stream-list >> text=pricing")
    links = page.locator("li.tl-row .tl-link")
    expect(links.first).to_be_visible()
    # explorer.js: the arrow keys move between versions.
    links.first.focus()
    page.keyboard.press("ArrowDown")
    expect(links.nth(1)).to_be_focused()
    # htmx: opening a version fills the panel.
    links.first.click()
    expect(page.locator("#panel h2")).to_contain_text("Version")

"""A pipeline defined in a real browser from a spec, its page, and its deletion asked in place,
naming what goes and what stays."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from continust.log.projects import create_project, create_stream
from continust.models import Pipeline
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SPEC = {
    "sources": [{"streams": ["web"]}],
    "steps": [{"map": {"page": "/payload/page"}}],
    "sink": {"jsonl": {"path": "pages.jsonl"}},
}


def test_define_see_and_delete_a_pipeline(page: Page, settings, tmp_path):
    settings.CONTINUST_PIPELINE_FILES_DIR = str(tmp_path)
    owner = User.objects.create_user("demo", password="demo")
    create_stream(create_project("acme", "Acme", owner=owner), "web")
    log_in(page)
    page.goto("/p/acme/pipelines/")

    # (A bad spec's page is a 400, which Chromium logs as an error: its problems shown by
    # path are tests/test_user_pipelines_views.py's.)
    page.fill("#id_name", "pages")
    page.uncheck("#id_start")
    page.fill("#id_spec", json.dumps(SPEC))
    page.click("#define button[type=submit]")
    expect(page.locator("h1")).to_contain_text("pages")
    expect(page.locator(".pipeline-spec")).to_contain_text("pages.jsonl")

    page.click("#pipeline-delete")  # asks first, in place
    expect(page.locator("#confirm-slot .confirm-facts")).to_contain_text("deletes pipeline pages")
    expect(page.locator("#confirm-slot .confirm-facts")).to_contain_text("file pages.jsonl stays")
    assert Pipeline.objects.filter(name="pages").exists()
    page.click("#confirm-slot button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Pipelines of Acme")
    assert not Pipeline.objects.exists()

"""The explorer's screens for pipelines a user defines: create from a spec (its problems shown
inline, by path), the spec, lag and checkpoint on the page, delete after a confirmation
naming what goes."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import Pipeline
from continust.pipelines import control
from continust.pipelines.runner import claim, run_pipeline

pytestmark = pytest.mark.django_db

SPEC = {
    "description": "clicks <b>by</b> page",
    "sources": [{"streams": ["web"]}],
    "steps": [{"map": {"page": "/payload/page"}}],
    "sink": {"jsonl": {"path": "pages.jsonl"}},
}


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.CONTINUST_PIPELINE_FILES_DIR = str(tmp_path / "files")


def create(client, spec, name="pages", start=""):
    return client.post(
        reverse("pipeline-create", args=["acme"]),
        {"form": "spec", "name": name, "spec": spec, "start": start},
    )


def test_an_editor_creates_one_from_a_spec(client, alice, project):
    create_stream(project, "web")
    client.force_login(alice)
    listing = client.get(reverse("pipelines", args=["acme"])).content.decode()
    assert "Define a pipeline" in listing and "&quot;sources&quot;" in listing
    response = create(client, json.dumps(SPEC), start="on")
    assert response.status_code == 302
    made = Pipeline.objects.get(name="pages")
    assert made.spec == SPEC and made.enabled


def test_a_bad_spec_shows_each_problem_with_its_path_in_the_form(client, alice, project):
    client.force_login(alice)
    bad = {**SPEC, "sources": [{"streams": ["nope<script>"]}], "sink": {"jsonl": {"path": "../x"}}}
    response = create(client, json.dumps(bad))
    assert response.status_code == 400
    page = response.content.decode()
    assert "/sink/jsonl/path" in page
    assert "<script>" not in page and "nope&lt;script&gt;" in page
    assert "does not validate" in page and "Define a pipeline" in page
    assert "not JSON" in create(client, "{oops").content.decode()
    assert not Pipeline.objects.exists()


def test_the_page_shows_the_spec_lag_and_checkpoint(client, bob, project):
    web = create_stream(project, "web")
    append(web, [NewEvent("click", {"page": "/a"}), NewEvent("click", {"page": "/b"})])
    pipeline = control.create_from_spec(project, "pages", SPEC)
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    append(web, [NewEvent("click", {"page": "/c"})])
    client.force_login(bob)
    page = client.get(reverse("pipeline", args=["acme", "pages"])).content.decode()
    assert "clicks &lt;b&gt;by&lt;/b&gt; page" in page and "pages.jsonl" in page
    assert "Lag: 1 log position behind" in page and "checkpoint: epoch 1" in page
    assert "Delete…" not in page  # bob is a viewer
    listing = client.get(reverse("pipelines", args=["acme"])).content.decode()
    assert "its spec" in listing


def test_delete_asks_naming_what_goes_and_what_stays(client, alice, bob, project):
    create_stream(project, "web")
    pipeline = control.create_from_spec(project, "pages", SPEC)
    url = reverse("pipeline-delete", args=["acme", "pages"])
    client.force_login(bob)
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    client.force_login(alice)
    asked = client.get(url).content.decode()
    assert "Delete pipeline pages?" in asked and "file pages.jsonl stays" in asked
    client.post(url)  # without the confirm field: asks again, deletes nothing
    assert Pipeline.objects.filter(pk=pipeline.pk).exists()
    claim(pipeline.pk, worker="w", enable=True)
    assert "pause it first" in client.get(url).content.decode()
    Pipeline.objects.filter(pk=pipeline.pk).update(lease_expires_at=None, enabled=False)
    response = client.post(url, {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"].endswith("/pipelines/")
    assert not Pipeline.objects.exists()

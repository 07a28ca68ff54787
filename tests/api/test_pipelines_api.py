"""The pipelines API: create from a spec (422 invalid_pipeline naming the path), list, show,
update (409 while it runs), pause, resume, delete, with membership and roles."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from continust.log.projects import add_member, create_project, create_stream
from continust.models import Pipeline, Role
from continust.pipelines.runner import run_pipeline
from tests.api.conftest import Api, issue
from tests.pipelines_support import write_events
from tests.test_user_pipelines import counts_spec, table_rows

pytestmark = pytest.mark.django_db

PIPES = "/projects/acme/pipelines"


def put(api: Api, path: str, body):
    return api.client.put(
        f"/api{path}", json.dumps(body), content_type="application/json", headers=api.headers()
    )


def delete(api: Api, path: str):
    return api.client.delete(f"/api{path}", headers=api.headers())


def test_a_bad_spec_is_a_422_naming_the_path(alice_api):
    spec = counts_spec()
    spec["steps"][0]["window"]["type"] = "hopping"
    answer = alice_api.post(PIPES, {"name": "counts", "spec": spec})
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_pipeline" and body["path"] == "/steps/0/window/type"
    assert body["problems"][0]["path"] == "/steps/0/window/type"
    assert not Pipeline.objects.exists()
    # The request's own shape is the schema's: a 400, not a 422.
    assert alice_api.post(PIPES, {"name": "Counts", "spec": spec}).status_code == 400
    assert alice_api.post(PIPES, {"name": "c", "spec": [], "x": 1}).status_code == 400


def test_a_table_continust_did_not_create_is_a_422_naming_it(alice_api, project):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE theirs (stream TEXT, type TEXT, start_ms BIGINT)")
    answer = alice_api.post(PIPES, {"name": "counts", "spec": counts_spec(table="theirs")})
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_pipeline" and body["path"] == "/sink/table/name"
    assert "table theirs exists and was not created by continust" in body["detail"]
    assert "CONTINUST_PIPELINE_ADOPT_TABLES" in body["detail"]
    assert not Pipeline.objects.exists()


def test_create_run_show_update_and_delete(alice_api, project):
    write_events([create_stream(project, "s")], 300, seed=9)
    created = alice_api.post(PIPES, {"name": "counts", "spec": counts_spec()})
    assert created.status_code == 201, created.json()
    assert created.json()["spec"] == counts_spec() and created.json()["status"] == "idle"
    assert alice_api.post(PIPES, {"name": "counts", "spec": counts_spec()}).status_code == 409

    resumed = alice_api.post(f"{PIPES}/counts/resume", {})
    assert resumed.status_code == 200 and resumed.json()["enabled"]
    busy = put(alice_api, f"{PIPES}/counts", {"spec": counts_spec(size_ms=120_000)})
    assert busy.status_code == 409 and busy.json()["code"] == "pipeline_running"
    assert alice_api.post(f"{PIPES}/counts/pause", {}).json()["status"] == "paused"

    run_pipeline(Pipeline.objects.get().pk, until_caught_up=True, enable=True)
    shown = alice_api.get(f"{PIPES}/counts").json()
    assert shown["events"] == 300 and shown["lag"] == 0 and shown["checkpoint"]["epoch"] >= 1
    assert [p["name"] for p in alice_api.get(PIPES).json()["items"]] == ["counts"]

    wider = counts_spec(size_ms=120_000)
    refused = put(alice_api, f"{PIPES}/counts", {"spec": wider})
    assert refused.status_code == 409 and "reset" in refused.json()["detail"]
    reset = put(alice_api, f"{PIPES}/counts", {"spec": wider, "reset": True})
    assert reset.status_code == 200 and reset.json()["checkpoint"]["epoch"] == 0
    assert table_rows("stream_counts") == {}

    deleted = delete(alice_api, f"{PIPES}/counts")
    assert deleted.status_code == 200 and deleted.json()["kept"] == "table stream_counts"
    assert alice_api.get(f"{PIPES}/counts").status_code == 404


def test_roles_and_membership(alice_api, bob_api, project):
    assert alice_api.post(PIPES, {"name": "counts", "spec": counts_spec()}).status_code == 201
    eddie = User.objects.create_user("eddie")
    add_member(project, eddie, Role.EDITOR)
    eddie_api = Api(Client(), issue(eddie, [project]))
    charlie = User.objects.create_user("charlie")
    create_project("elsewhere", owner=charlie)
    stranger = Api(Client(), issue(charlie, list(charlie.projects.all())))
    assert bob_api.get(PIPES).status_code == 200  # a viewer reads
    assert bob_api.post(f"{PIPES}/counts/pause", {}).status_code == 403
    assert bob_api.post(PIPES, {"name": "b", "spec": counts_spec("b")}).status_code == 403
    assert eddie_api.post(f"{PIPES}/counts/pause", {}).status_code == 200
    assert delete(eddie_api, f"{PIPES}/counts").status_code == 403  # deleting: admins
    for path in (PIPES, f"{PIPES}/counts"):
        assert stranger.get(path).status_code == 404
    assert stranger.post(f"{PIPES}/counts/pause", {}).status_code == 404
    assert delete(stranger, f"{PIPES}/counts").status_code == 404
    assert Pipeline.objects.filter(name="counts").exists()

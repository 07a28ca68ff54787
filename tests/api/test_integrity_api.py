"""Blame, verify, digest and export over HTTP, for any member of the project."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from continust.log.store import NewEvent, append, fork
from continust.models import Event
from tests.api.conftest import Api
from tests.test_digests import cut_tail
from tests.test_integrity import tamper

pytestmark = pytest.mark.django_db

BASE = "/projects/acme/streams/pricing"


def blame_url(of: str, path: str) -> str:
    return BASE + "/blame?" + urlencode({"of": of, "path": path})


@pytest.fixture
def history(stream):
    v1, v2, v3 = (
        append(stream, [NewEvent("set", {"pro": n, "name": "Pro"})]).versions[0]
        for n in (29, 31, 33)
    )
    fork(stream, "side", v1)
    return v1, v2, v3


def test_blame_names_the_versions_that_changed_a_path(bob_api: Api, history):
    v1, v2, v3 = history
    answer = bob_api.get(blame_url("main", "/pro"))
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["value"] == 33 and body["version"] == v3.pk and body["complete"] is True
    assert [(c["version"], c["value"], c["previous"], c["added"]) for c in body["changes"]] == [
        (v3.pk, 33, 31, False),
        (v2.pk, 31, 29, False),
        (v1.pk, 29, None, True),
    ]
    unchanged = bob_api.get(blame_url("main", "/name")).json()
    assert [c["version"] for c in unchanged["changes"]] == [v1.pk]


def test_blame_refuses_a_missing_path_and_a_bad_pointer(bob_api: Api, history):
    missing = bob_api.get(blame_url("main", "/nothing"))
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad = bob_api.get(blame_url("main", "pro"))
    assert bad.status_code == 400
    nowhere = bob_api.get(blame_url("nowhere", "/pro"))
    assert nowhere.status_code == 404


def test_verify_a_stream_and_a_project(bob_api: Api, history):
    stream_report = bob_api.get(BASE + "/verify").json()
    assert stream_report["ok"] is True and stream_report["streams"] == 1
    assert stream_report["versions"] == 3 and stream_report["breaks"] == []
    project_report = bob_api.get("/projects/acme/verify")
    assert project_report.status_code == 200 and project_report.json()["ok"] is True


def test_a_verification_on_the_workers_reports_progress_then_the_report(
    bob_api: Api, history, stream
):
    from continust.audit import fanout
    from continust.models import VerificationPart

    started = bob_api.post("/projects/acme/verifications", {})
    assert started.status_code == 202, started.json()
    body = started.json()
    assert (body["streams"], body["done"], body["report"]) == (1, 0, None)
    assert body["requested_by"] == "bob"
    url = f"/projects/acme/verifications/{body['id']}"
    assert bob_api.get(url).json()["finished_at"] is None
    for part in VerificationPart.objects.filter(verification_id=body["id"]):
        fanout.run_part(part.pk)
    done = bob_api.get(url).json()
    assert done["done"] == 1 and done["finished_at"] is not None
    assert done["report"] == bob_api.get("/projects/acme/verify").json()
    assert bob_api.get("/projects/acme/verifications/999999").status_code == 404


def test_verify_names_a_broken_link(bob_api: Api, history, stream):
    last = Event.objects.get(stream=stream, seq=3)
    tamper(
        f"UPDATE continust_event SET payload = '{{\"pro\": 1}}' WHERE position = {last.pk}",
        "continust_event",
    )
    report = bob_api.get(BASE + "/verify").json()
    assert report["ok"] is False
    assert report["broken_streams"] == ["acme/pricing"]
    assert bob_api.get("/projects/acme/verify").json()["ok"] is False


def test_a_digest_verifies_until_the_tail_is_cut(bob_api: Api, history, stream):
    digest = bob_api.get("/projects/acme/digest")
    assert digest.status_code == 200
    document = digest.json()
    assert document["format"] == "continust-digest/1" and document["project"] == "acme"
    assert [e["stream"] for e in document["streams"]] == ["pricing"]
    assert set(document["streams"][0]["branches"]) == {"main", "side"}
    intact = bob_api.post("/projects/acme/digest/verify", document)
    assert intact.status_code == 200 and intact.json()["ok"] is True, intact.json()
    cut_tail(stream, history[2])
    cut = bob_api.post("/projects/acme/digest/verify", document).json()
    assert cut["ok"] is False
    assert any("cut" in b["reason"] for b in cut["breaks"])


def test_an_altered_digest_is_refused_with_422(bob_api: Api, history):
    document = bob_api.get("/projects/acme/digest").json()
    document["streams"][0]["events"] = 1
    answer = bob_api.post("/projects/acme/digest/verify", document)
    assert answer.status_code == 422 and "altered" in answer.json()["detail"]
    malformed = bob_api.post("/projects/acme/digest/verify", {"format": "x"})
    assert malformed.status_code == 400


def test_export_streams_json_lines_of_the_stream(bob_api: Api, history):
    answer = bob_api.get(BASE + "/export")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(answer.streaming_content).splitlines()]
    kinds = [line["kind"] for line in lines]
    # main's three appends and the fork of side each moved a branch once.
    assert kinds == ["stream"] + ["event"] * 3 + ["version"] * 3 + ["move"] * 4 + ["branch"] * 2
    assert lines[0]["name"] == "pricing"


def test_export_streams_the_whole_project_as_export_jsonl_does(bob_api: Api, history, project):
    from continust.audit.tags import create_tag
    from continust.interchange.jsonl import export_lines

    create_tag(history[0].stream, "release-1", history[1], actor="alice")
    answer = bob_api.get("/projects/acme/export")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/x-ndjson"
    assert 'filename="acme.jsonl"' in answer["Content-Disposition"]
    text = b"".join(answer.streaming_content).decode()
    assert text == "".join(export_lines(project))
    kinds = {json.loads(line)["kind"] for line in text.splitlines()}
    assert {"stream", "event", "version", "branch", "tag"} <= kinds


def test_a_stranger_sees_none_of_it(charlie, project, history, db):
    from django.test import Client

    from api.models import ApiToken, Scope
    from continust.log.projects import create_project

    other = create_project("other", "Other", owner=charlie)
    stranger = Api(Client(), ApiToken.issue(charlie, "t", [other], Scope.READ)[1])
    for path in (
        BASE + "/verify",
        "/projects/acme/verify",
        "/projects/acme/digest",
        BASE + "/export",
        "/projects/acme/export",
    ):
        assert stranger.get(path).status_code == 404, path
    assert stranger.post("/projects/acme/verifications", {}).status_code == 404

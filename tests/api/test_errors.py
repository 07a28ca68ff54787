"""Every error the API answers, its exact status and body, and that nothing was written."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client, override_settings

from continust.log.projects import create_project, create_stream
from continust.models import BranchMove, Event, Stream, Version
from tests.api.conftest import Api, event, events_path, issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def nothing_written(stream):
    """Assert, after the test, that the log holds no event, version or branch move."""
    yield
    assert Event.objects.count() == 0
    assert Version.objects.count() == 0
    assert BranchMove.objects.count() == 0


def test_malformed_json_is_400(alice_api, nothing_written):
    response = alice_api.post(events_path(), raw='{"events": [')
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


@pytest.mark.parametrize(
    "raw",
    [
        '{"events": [{"type": "t", "payload": {"x": NaN}}]}',
        '{"events": [{"type": "t", "payload": {"x": 1e999}}]}',
        '{"events": [{"type": "t", "payload": {"x": "nul \\u0000"}}]}',
        '{"events": [{"type": "t", "payload": {"x": "\\ud800"}}]}',
        b'{"events": [{"type": "t", "payload": {"x": "\xff"}}]}',
    ],
)
def test_json_the_log_cannot_store_is_400(alice_api, nothing_written, raw):
    response = alice_api.post(events_path(), raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"events": []},
        {"events": [{"type": "t"}]},
        {"events": [{"type": "t", "payload": [1, 2]}]},
        {"events": [{"type": "   ", "payload": {}}]},
        {"events": [{"type": "t", "payload": {}, "surprise": 1}]},
        {"events": [{"type": "t", "payload": {}, "id": "not-a-uuid"}]},
        {"events": [{"type": "t", "payload": {}, "timestamp": "2024-01-01T00:00:00"}]},
        {"events": [{"type": "t", "payload": {}}], "expected_head": "v1"},
        [1, 2, 3],
    ],
)
def test_a_body_of_the_wrong_shape_is_400_not_422(alice_api, nothing_written, body):
    response = alice_api.post(events_path(), body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert response.json()["errors"], "the body says what is wrong and where"


def test_a_bad_query_parameter_is_400(alice_api, stream):
    response = alice_api.get(events_path(), limit=0)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"][-1] == "limit"


@pytest.mark.parametrize("cursor", ["bm9wZQ", "¹3", "-1", "1" * 19, ""])
def test_a_forged_cursor_is_400(alice_api, stream, cursor):
    response = alice_api.get(events_path(), after=cursor)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nope", "Basic YTpi", "Bearer ctn_000000000000_" + "x" * 43]
)
def test_no_valid_token_is_401(stream, nothing_written, header):
    headers = {"Authorization": header} if header else {}
    response = Client().post(
        f"/api{events_path()}",
        {"events": [event({"a": 1})]},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_reading_needs_a_token_too(anonymous_api, stream):
    assert anonymous_api.get(events_path()).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/projects/nope/streams",
        "/projects/acme/streams/nope/events",
        "/projects/acme/streams/pricing/versions/999999",
        "/projects/acme/streams/pricing/resolve?ref=nope",
        # A fixed id: pytest-xdist runs a test only when every process collected the same ids.
        "/projects/acme/events/00000000-0000-4000-8000-000000000000",
        "/projects/acme/streams/pricing/no-such-operation",
        "/nothing/here",
    ],
)
def test_unknown_things_are_404(alice_api, stream, path):
    response = alice_api.client.get(f"/api{path}", headers=alice_api.headers())
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_appending_to_an_unknown_stream_is_404(alice_api, nothing_written):
    response = alice_api.post(events_path("nope"), {"events": [event({"a": 1})]})
    assert response.status_code == 404


def test_a_project_the_user_is_not_in_is_404_like_a_missing_one(charlie, stream):
    elsewhere = create_project("elsewhere", owner=charlie)
    charlie_api = Api(Client(), issue(charlie, [elsewhere]))
    hidden = charlie_api.get(events_path())
    missing = charlie_api.get("/projects/does-not-exist/streams/pricing/events")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("acme", "X") == missing.json()["detail"].replace(
        "does-not-exist", "X"
    )


def test_a_project_outside_the_tokens_scope_is_404(alice, project, stream):
    other = create_project("other", owner=alice)
    scoped_elsewhere = Api(Client(), issue(alice, [other]))
    assert scoped_elsewhere.get(events_path()).status_code == 404
    assert scoped_elsewhere.post(events_path(), {"events": [event({"a": 1})]}).status_code == 404
    assert Event.objects.count() == 0


def test_a_stale_expected_head_is_409_with_the_current_head(alice_api, stream):
    first = alice_api.post(events_path(), {"events": [event({"a": 1})]}).json()["head"]
    second = alice_api.post(events_path(), {"events": [event({"a": 2})]}).json()["head"]
    response = alice_api.post(events_path(), {"events": [event({"a": 3})], "expected_head": first})
    assert response.status_code == 409
    assert response.json()["code"] == "stale_head"
    assert response.json()["current_head"] == second
    assert Event.objects.count() == 2


def test_an_event_id_reused_with_other_content_is_409(alice_api, stream):
    key = str(uuid.uuid4())
    alice_api.post(events_path(), {"events": [event({"a": 1}, id=key)]})
    response = alice_api.post(events_path(), {"events": [event({"a": 2}, id=key)]})
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert Event.objects.count() == 1


def test_a_partly_recorded_batch_is_409_and_writes_nothing(alice_api, stream):
    key = str(uuid.uuid4())
    alice_api.post(events_path(), {"events": [event({"a": 1}, id=key)]})
    response = alice_api.post(events_path(), {"events": [event({"a": 1}, id=key), event({"b": 2})]})
    assert response.status_code == 409
    assert Event.objects.count() == 1


@override_settings(CONTINUST_MAX_PAYLOAD_BYTES=64)
def test_a_payload_above_the_limit_is_413(alice_api, nothing_written):
    response = alice_api.post(
        events_path(), {"events": [event({"a": 1}), event({"big": "x" * 100})]}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_above_the_limit_is_413_before_it_is_read(alice_api, nothing_written):
    response = alice_api.post(events_path(), raw='{"events": [' + " " * 2000 + "]}")
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_the_body_limit_is_checked_before_the_token(anonymous_api, nothing_written):
    response = anonymous_api.post(events_path(), raw="x" * 2000)
    assert response.status_code == 413


def test_an_unknown_causation_is_422(alice_api, nothing_written):
    response = alice_api.post(
        events_path(), {"events": [event({"a": 1}), event({"a": 2}, causation=str(uuid.uuid4()))]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_causation"


def test_a_causation_in_another_project_is_422(alice, alice_api, stream):
    other = create_project("other", owner=alice)
    elsewhere = create_stream(other, "s")
    cause = str(uuid.uuid4())
    Api(Client(), issue(alice, [other])).post(
        "/projects/other/streams/s/events", {"events": [event({"a": 1}, id=cause)]}
    )
    response = alice_api.post(events_path(), {"events": [event({"a": 1}, causation=cause)]})
    assert response.status_code == 422
    assert Event.objects.exclude(stream=elsewhere).count() == 0


def test_a_patch_that_does_not_apply_is_422_and_the_batch_writes_nothing(alice_api, project):
    create_stream(project, "doc", reducer="patch")
    response = alice_api.post(
        events_path("doc"),
        {
            "events": [
                event({"patch": [{"op": "add", "path": "/a", "value": 1}]}),
                event({"patch": [{"op": "test", "path": "/a", "value": 2}]}),
            ]
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "reducer_rejected"
    assert Event.objects.count() == 0 and Version.objects.count() == 0


def test_an_event_id_twice_in_a_batch_is_422(alice_api, nothing_written):
    key = str(uuid.uuid4())
    response = alice_api.post(
        events_path(), {"events": [event({"a": 1}, id=key), event({"a": 2}, id=key)]}
    )
    assert response.status_code == 422


def test_a_read_only_token_cannot_write_403(alice, project, nothing_written):
    from api.models import Scope

    reader = Api(Client(), issue(alice, [project], Scope.READ))
    assert reader.get(events_path()).status_code == 200
    response = reader.post(events_path(), {"events": [event({"a": 1})]})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_a_viewer_cannot_write_even_with_a_write_token_403(bob_api, nothing_written):
    assert bob_api.get(events_path()).status_code == 200
    response = bob_api.post(events_path(), {"events": [event({"a": 1})]})
    assert response.status_code == 403


def test_a_taken_stream_name_is_409(alice_api, stream):
    response = alice_api.post("/projects/acme/streams", {"name": "pricing"})
    assert response.status_code == 409
    assert response.json()["code"] == "stream_exists"
    assert Stream.objects.count() == 1


def test_an_unknown_reducer_is_422(alice_api, project):
    response = alice_api.post("/projects/acme/streams", {"name": "s", "reducer": "nope"})
    assert response.status_code == 422
    assert Stream.objects.count() == 0


def test_error_bodies_are_json_with_a_code_and_a_detail(alice_api, stream):
    response = alice_api.get("/projects/nope/streams")
    assert response["Content-Type"] == "application/json"
    assert set(json.loads(response.content)) == {"code", "detail"}

"""Appending over HTTP: batches, idempotent retries, expected heads, stream names with "/"."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from continust.log.projects import create_stream
from continust.models import Event, Version
from tests.api.conftest import event, events_path

pytestmark = pytest.mark.django_db


def test_it_appends_a_batch_and_answers_201(alice_api, stream):
    response = alice_api.post(events_path(), {"events": [event({"a": 1}), event({"b": 2})]})
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True and body["branch"] == "main"
    first, second = body["versions"]
    assert second["parents"] == [first["id"]] and first["parents"] == []
    assert body["head"] == second["id"]
    assert Version.objects.get(pk=second["id"]).state.data == {"a": 1, "b": 2}


def test_a_retried_batch_gets_the_same_versions_and_writes_nothing(alice_api, stream):
    """A client whose first request timed out after the server committed sends it again."""
    batch = {"events": [event({"n": n}, id=str(uuid.uuid4())) for n in range(50)]}
    first = alice_api.post(events_path(), batch)
    assert first.status_code == 201
    retried = alice_api.post(events_path(), batch)
    assert retried.status_code == 200
    assert retried.json()["created"] is False
    assert retried.json()["versions"] == first.json()["versions"]
    assert Event.objects.filter(stream=stream).count() == 50
    assert Version.objects.filter(stream=stream).count() == 50


def test_a_retry_after_later_appends_still_gets_its_own_versions(alice_api, stream):
    batch = {"events": [event({"n": 1}, id=str(uuid.uuid4()))]}
    first = alice_api.post(events_path(), batch).json()
    alice_api.post(events_path(), {"events": [event({"n": 2})]})
    retried = alice_api.post(events_path(), batch)
    assert retried.status_code == 200
    assert retried.json()["versions"] == first["versions"]
    assert retried.json()["head"] == first["head"]


def test_it_appends_at_the_expected_head(alice_api, stream):
    head = alice_api.post(events_path(), {"events": [event({"a": 1})]}).json()["head"]
    response = alice_api.post(events_path(), {"events": [event({"a": 2})], "expected_head": head})
    assert response.status_code == 201


def test_a_null_expected_head_means_a_new_branch(alice_api, stream):
    response = alice_api.post(events_path(), {"events": [event({"a": 1})], "expected_head": None})
    assert response.status_code == 201
    again = alice_api.post(events_path(), {"events": [event({"a": 2})], "expected_head": None})
    assert again.status_code == 409
    assert again.json()["current_head"] == response.json()["head"]


def test_the_actor_defaults_to_the_tokens_user(alice_api, stream):
    alice_api.post(events_path(), {"events": [event({"a": 1}), event({"a": 2}, actor="billing")]})
    assert list(Event.objects.order_by("seq").values_list("actor", flat=True)) == [
        "alice",
        "billing",
    ]


def test_it_keeps_timestamps_causation_and_correlation(alice_api, stream):
    cause = str(uuid.uuid4())
    correlation = str(uuid.uuid4())
    alice_api.post(
        events_path(),
        {
            "events": [
                event({"a": 1}, id=cause, timestamp="2024-05-01T12:00:00+02:00"),
                event({"a": 2}, causation=cause, correlation=correlation),
            ]
        },
    )
    first, second = Event.objects.order_by("seq")
    assert first.timestamp.isoformat() == "2024-05-01T10:00:00+00:00"
    assert str(second.causation_id) == cause and str(second.correlation_id) == correlation


@pytest.mark.parametrize("spelling", ["accounts/alice", "accounts%2Falice"])
def test_stream_names_may_contain_slashes(alice_api, project, spelling):
    stream = create_stream(project, "accounts/alice")
    response = alice_api.post(events_path(spelling), {"events": [event({"a": 1})]})
    assert response.status_code == 201
    assert response.json()["versions"][0]["stream"] == "accounts/alice"
    assert Event.objects.filter(stream=stream).count() == 1


def test_a_stream_named_like_a_suffix_is_still_one_stream(alice_api, project):
    """streams/a/events/events is the events of stream "a/events", never of stream "a"."""
    create_stream(project, "a")
    tricky = create_stream(project, "a/events")
    response = alice_api.post(events_path("a/events"), {"events": [event({"x": 1})]})
    assert response.status_code == 201
    assert Event.objects.get().stream == tricky
    listing = alice_api.get(events_path("a/events"))
    assert [e["stream"] for e in listing.json()["items"]] == ["a/events"]
    assert alice_api.get(events_path("a")).json()["items"] == []


def test_the_logs_own_event_types_are_refused_and_nothing_is_written(alice_api, stream):
    for own in ("continust.merge", "continust.revert", "continust.anything"):
        answer = alice_api.post(events_path(), {"events": [{"type": own, "payload": {}}]})
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_event"
        assert "are the log's own" in answer.json()["detail"]
    assert not Event.objects.filter(stream=stream).exists()
    with pytest.raises(CommandError, match="are the log's own"):
        call_command(
            "append",
            "--project",
            "acme",
            "--stream",
            stream.name,
            "--type",
            "continust.merge",
            "--payload",
            "{}",
        )
    assert not Event.objects.filter(stream=stream).exists()

"""Appending to the log: atomic batches, expected heads, idempotency, causation, payloads."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from continust.core.errors import (
    ConcurrencyConflict,
    IdempotencyConflict,
    InvalidEvent,
    NotFound,
    PayloadTooLarge,
    ReducerRejected,
    UnknownCausation,
)
from continust.graph.parents import parents_of
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.models import Branch, BranchMove, Event, State, Version
from tests.conftest import events, put

pytestmark = pytest.mark.django_db


def test_it_folds_events_into_versions(stream):
    v1, v2 = put(stream, {"plan": "basic", "price": 10}, {"price": 12})
    assert v1.state.data == {"plan": "basic", "price": 10}
    assert v2.state.data == {"plan": "basic", "price": 12}
    assert [v1.generation, v2.generation] == [0, 1]
    assert parents_of(v2) == [v1.pk]
    assert Branch.objects.get(stream=stream, name="main").head_id == v2.pk
    assert v2.reducer == "merge" and v2.reducer_version == 1


def test_it_chains_event_hashes(stream):
    put(stream, {"a": 1}, {"a": 2}, {"a": 3})
    chain = list(Event.objects.filter(stream=stream).order_by("seq"))
    assert chain[0].prev_hash == "0" * 64
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.prev_hash == before.hash
    stream.refresh_from_db()
    assert stream.last_hash == chain[-1].hash and stream.event_count == 3


def test_it_stores_identical_states_once(stream):
    put(stream, {"a": 1}, {"a": 2}, {"a": 1})
    assert State.objects.count() == 2


def test_it_refuses_a_stale_expected_head(stream):
    (v1,) = put(stream, {"a": 1})
    put(stream, {"a": 2})
    with pytest.raises(ConcurrencyConflict) as caught:
        append(stream, events({"a": 3}), expected_head=v1.pk)
    assert caught.value.current_head == Version.objects.filter(stream=stream).last().pk
    assert Event.objects.filter(stream=stream).count() == 2


def test_it_accepts_the_current_expected_head(stream):
    (v1,) = put(stream, {"a": 1})
    result = append(stream, events({"a": 2}), expected_head=v1.pk)
    assert result.versions[0].state.data == {"a": 2}


def test_it_expects_no_head_on_a_new_branch(stream):
    append(stream, events({"a": 1}), expected_head=None)
    with pytest.raises(ConcurrencyConflict):
        append(stream, events({"a": 2}), expected_head=None)


def test_it_returns_the_same_versions_for_a_retried_batch(stream):
    batch = [NewEvent(type="set", payload={"n": n}, id=uuid.uuid4()) for n in range(3)]
    first = append(stream, batch)
    again = append(stream, batch)
    assert again.created is False
    assert [v.pk for v in again.versions] == [v.pk for v in first.versions]
    assert Event.objects.filter(stream=stream).count() == 3


def test_it_refuses_a_reused_id_with_other_content(stream):
    key = uuid.uuid4()
    append(stream, [NewEvent(type="set", payload={"n": 1}, id=key)])
    with pytest.raises(IdempotencyConflict):
        append(stream, [NewEvent(type="set", payload={"n": 2}, id=key)])


def test_it_refuses_a_partly_recorded_batch(stream):
    key = uuid.uuid4()
    append(stream, [NewEvent(type="set", payload={"n": 1}, id=key)])
    with pytest.raises(IdempotencyConflict):
        append(
            stream,
            [
                NewEvent(type="set", payload={"n": 1}, id=key),
                NewEvent(type="set", payload={"n": 2}),
            ],
        )
    assert Event.objects.count() == 1


def test_it_writes_nothing_when_one_event_of_a_batch_is_bad(stream):
    put(stream, {"a": 1})
    with pytest.raises(InvalidEvent):
        append(
            stream,
            [
                NewEvent(type="set", payload={"a": 2}),
                NewEvent(type="set", payload=["not", "an", "object"]),
            ],
        )  # type: ignore[arg-type]
    assert Event.objects.count() == 1 and Version.objects.count() == 1


@override_settings(CONTINUST_MAX_PAYLOAD_BYTES=100)
def test_it_refuses_a_payload_above_the_cap(stream):
    with pytest.raises(PayloadTooLarge):
        append(stream, events({"blob": "x" * 200}))
    assert Event.objects.count() == 0


def test_it_refuses_nan(stream):
    with pytest.raises(InvalidEvent):
        append(stream, events({"x": float("nan")}))


def test_it_checks_causation_within_the_project(project, stream):
    (v1,) = put(stream, {"a": 1})
    other = create_stream(project, "accounts")
    append(other, [NewEvent(type="set", payload={"b": 1}, causation=v1.event.id)])
    with pytest.raises(UnknownCausation):
        append(other, [NewEvent(type="set", payload={"b": 2}, causation=uuid.uuid4())])


def test_it_accepts_causation_by_an_earlier_event_of_the_same_batch(stream):
    first = NewEvent(type="set", payload={"a": 1}, id=uuid.uuid4())
    second = NewEvent(type="set", payload={"a": 2}, causation=first.id)
    append(stream, [first, second])
    with pytest.raises(UnknownCausation):
        append(stream, [NewEvent(type="set", payload={"a": 3}, causation=uuid.uuid4())])


def test_it_refuses_causation_from_another_project(alice, stream):
    from continust.log.projects import create_project

    elsewhere = create_stream(create_project("other"), "s")
    (foreign,) = put(elsewhere, {"x": 1})
    with pytest.raises(UnknownCausation):
        append(stream, [NewEvent(type="set", payload={"a": 1}, causation=foreign.event.id)])


def test_it_refuses_an_event_the_patch_reducer_rejects(project):
    patched = create_stream(project, "patched", reducer="patch")
    add = {"patch": [{"op": "add", "path": "/a", "value": 1}]}
    append(patched, [NewEvent(type="p", payload=add)])
    failing = {
        "patch": [
            {"op": "test", "path": "/a", "value": 2},
            {"op": "replace", "path": "/a", "value": 3},
        ]
    }
    with pytest.raises(ReducerRejected, match="does not apply"):
        append(patched, [NewEvent(type="p", payload=failing)])
    assert Event.objects.filter(stream=patched).count() == 1


def test_it_replaces_state_with_the_replace_reducer(project):
    replaced = create_stream(project, "replaced", reducer="replace")
    append(replaced, events({"a": 1}, {"b": 2}))
    assert Version.objects.filter(stream=replaced).last().state.data == {"b": 2}


def test_it_refuses_an_unknown_branch_of_a_started_stream(stream):
    put(stream, {"a": 1})
    with pytest.raises(NotFound):
        append(stream, events({"a": 2}), branch="nope")


def test_it_forks_at_any_version_and_records_moves(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    fork(stream, "fix", v1, actor="alice")
    (v3,) = put(stream, {"a": 5}, branch="fix")
    assert parents_of(v3) == [v1.pk]
    moves = BranchMove.objects.filter(branch__name="fix").order_by("id")
    assert [(m.reason, m.new_head_id) for m in moves] == [("fork", v1.pk), ("append", v3.pk)]


def test_the_database_refuses_updates_and_deletes(stream):
    (v1, _) = put(stream, {"a": 1}, {"a": 2})
    fork(stream, "b", v1)
    put(stream, {"b": 1}, branch="b")
    merge(stream, "b", "main")  # a merge: its second parent is a link row
    for sql in (
        "UPDATE continust_event SET type = 'x'",
        "DELETE FROM continust_event",
        "UPDATE continust_version SET generation = 5",
        "UPDATE continust_version SET first_parent_id = NULL",
        "DELETE FROM continust_version",
        "DELETE FROM continust_versionparent",
        "UPDATE continust_versionparent SET parent_id = child_id",
        "UPDATE continust_state SET data = '{}'",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert set(Event.objects.values_list("type", flat=True)) == {"set", "continust.merge"}


def test_the_models_refuse_saving_an_existing_event(stream):
    (v1,) = put(stream, {"a": 1})
    event = v1.event
    event.type = "other"
    with pytest.raises(TypeError):
        event.save()


def test_it_refuses_a_user_reducer_that_makes_no_object(project):
    from continust.log.reducers import register

    register("test-listy", 1, lambda state, event: [state])
    listy = create_stream(project, "listy", reducer="test-listy")
    with pytest.raises(InvalidEvent, match="made a list, not a JSON object"):
        append(listy, events({"a": 1}))
    assert not Event.objects.filter(stream=listy).exists()


def test_it_folds_with_a_user_reducer_from_settings(project, settings):
    from continust.log import reducers

    settings.CONTINUST_REDUCERS = ["counter:1=tests.reducers.count_events"]
    reducers._loaded_settings = False
    counted = create_stream(project, "counted", reducer="counter")
    (v1, v2) = append(counted, events({}, {})).versions
    assert v2.state.data == {"count": 2} and v2.reducer == "counter"


@pytest.mark.parametrize(
    "payload",
    [{"text": "nul\x00inside"}, {"key\x00": 1}, {"lone": "\ud800"}, {"deep": [[{"x": "\x00"}]]}],
)
def test_it_refuses_text_no_database_stores(stream, payload):
    with pytest.raises(InvalidEvent):
        append(stream, events(payload))
    with pytest.raises(InvalidEvent):
        append(stream, [NewEvent(type="bad\x00type", payload={})])
    assert not Event.objects.exists()


def test_large_whole_floats_hash_as_the_database_returns_them(stream):
    from continust.audit.integrity import verify

    (version,) = put(stream, {"big": 1e20, "small": 1.5, "list": [2e17, 3.0]})
    stored = Event.objects.get(pk=version.event.pk)
    assert stored.payload == {"big": 10**20, "small": 1.5, "list": [2 * 10**17, 3.0]}
    assert verify().ok


def test_a_taken_stream_name_is_its_own_error(project, stream):
    from continust.core.errors import AlreadyExists

    with pytest.raises(AlreadyExists):
        create_stream(project, "pricing")


def test_event_ids_are_idempotency_keys_within_one_project(alice, stream):
    key = uuid.uuid4()
    (mine,) = append(stream, [NewEvent("set", {"a": 1}, id=key)]).versions
    other = create_stream(create_project("globex", "Globex", owner=alice), "pricing")
    theirs = append(other, [NewEvent("set", {"b": 2}, id=key)])
    # Another tenant can take the same id: it learns nothing of this one, and claims nothing.
    assert theirs.created
    assert theirs.versions[0].event.project_id != mine.event.project_id
    assert Event.objects.filter(id=key).count() == 2
    again = append(stream, [NewEvent("set", {"a": 1}, id=key)])
    assert not again.created and again.versions[0].pk == mine.pk


def test_it_refuses_a_state_the_database_would_give_back_changed(project, settings):
    from continust.log import reducers

    settings.CONTINUST_REDUCERS = ["negate:1=tests.reducers.negate"]
    reducers._loaded_settings = False
    flipped = create_stream(project, "flipped", reducer="negate")
    with pytest.raises(ReducerRejected, match="negative zero"):
        append(flipped, events({}))
    assert not Event.objects.filter(stream=flipped).exists()

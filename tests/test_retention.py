"""Retention policies, selective appends, and the one reader of states."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import IntegrityError, InternalError, connection, transaction

from continust.audit.integrity import verify
from continust.audit.trail import AUDIT_STREAM, audit_stream
from continust.core.errors import InvalidEvent, StateReleased
from continust.log import canonical
from continust.log.policy import make_policy, parse_age, policy_of
from continust.log.projects import create_stream
from continust.log.states import state_of, states_of
from continust.log.store import fork, merge
from continust.models import Event, Project, ReleasePermit, State, Stream, Version
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put

DB_ERRORS = (IntegrityError, InternalError)


def _stored(version: Version) -> bool:
    return State.objects.filter(pk=version.state_id).exists()


def _fill(stream: Stream, count: int, *, seed: int = 7, batch: int = 1) -> list[Version]:
    rng = random.Random(seed)
    made: list[Version] = []
    for start in range(0, count, batch):
        payloads = [
            {f"k{rng.randrange(30)}": rng.random(), "n": start + i}
            for i in range(min(batch, count - start))
        ]
        made += put(stream, *payloads)
    return made


# -- policies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("forever", {}, "not a retention policy"),
        ("selective", {"snapshot_every": 1}, "between"),
        ("selective", {"snapshot_every": "ten"}, "whole number"),
        ("selective", {"snapshot_every": "99999999999999999999"}, "between 2 and"),
        ("ephemeral", {"horizon_versions": "99999999999999999999"}, "between 1 and"),
        ("ephemeral", {}, "needs a horizon"),
        ("ephemeral", {"horizon_versions": 0}, "between 1 and"),
        ("ephemeral", {"horizon_versions": 2**40}, "between 1 and"),
        ("ephemeral", {"horizon_age": "99999999999999w"}, "at most 5200w"),
        ("ephemeral", {"horizon_age": 10**15}, "at most 5200w"),
        ("ephemeral", {"horizon_age": "3 fortnights"}, "not an age"),
        ("ephemeral", {"horizon_age": "0d"}, "positive"),
    ],
)
def test_a_bad_policy_is_refused_with_a_reason(
    kind: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidEvent, match=message):
        make_policy(kind, **options)


def test_ages_read_and_write_alike() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age(30) == timedelta(seconds=30)
    policy = make_policy("ephemeral", horizon_versions="500", horizon_age="2w")
    assert policy.as_dict() == {"kind": "ephemeral", "horizon_versions": 500, "horizon_age": "2w"}
    assert "newest 500 versions" in policy.describe()


@pytest.mark.django_db
def test_setting_a_policy_is_recorded_in_the_audit_stream(stream: Stream) -> None:
    set_policy(stream, make_policy("selective", snapshot_every=10), actor="alice")
    stream.refresh_from_db()
    assert policy_of(stream).snapshot_every == 10
    record = Event.objects.filter(stream__name=AUDIT_STREAM, type="retention.set").get()
    assert record.payload["after"] == {"kind": "selective", "snapshot_every": 10}
    assert record.actor == "alice"
    # Setting the same policy again records nothing.
    set_policy(stream, make_policy("selective", snapshot_every=10), actor="alice")
    assert Event.objects.filter(stream__name=AUDIT_STREAM, type="retention.set").count() == 1


@pytest.mark.django_db
def test_the_audit_stream_keeps_everything(project: Project) -> None:
    with pytest.raises(InvalidEvent, match="kept forever"):
        set_policy(
            audit_stream(project), make_policy("ephemeral", horizon_versions=1), actor="alice"
        )


# -- selective streams -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_selective_stream_stores_only_its_snapshots(project: Project) -> None:
    stream = create_stream(project, "sel")
    set_policy(stream, make_policy("selective", snapshot_every=10), actor="alice")
    versions = _fill(stream, 95, batch=19)
    stored = [v.generation for v in versions if _stored(v)]
    batch_ends = {18, 37, 56, 75, 94}
    assert set(stored) == {g for g in range(95) if g % 10 == 0} | batch_ends


@pytest.mark.django_db
def test_selective_states_equal_the_eternal_ones_byte_for_byte(project: Project) -> None:
    cache.clear()
    # States are stored once per content, so the selective stream is read before the
    # eternal one exists: every state it gives is recomputed, not found.
    selective = create_stream(project, "selective")
    set_policy(selective, make_policy("selective", snapshot_every=7), actor="alice")
    _grow(selective)
    versions = list(Version.objects.filter(stream=selective).order_by("id"))
    missing = [v for v in versions if not _stored(v)]
    assert len(missing) >= 100
    recomputed = {v.pk: canonical.canonical_json(state_of(v)) for v in versions}
    assert verify(streams=[selective]).ok
    eternal = create_stream(project, "eternal")
    _grow(eternal)
    pairs = zip(Version.objects.filter(stream=eternal).order_by("id"), versions, strict=True)
    for stored_version, selective_version in pairs:
        assert stored_version.state_id == selective_version.state_id
        stored = State.objects.get(pk=stored_version.state_id).data
        assert recomputed[selective_version.pk] == canonical.canonical_json(stored)


def _grow(stream: Stream) -> None:
    """120 events in batches, a branch, a merge and one more event: recomputation must
    go through forks and merges too."""
    versions = _fill(stream, 120, batch=40)
    fork(stream, "side", versions[50])
    put(stream, {"side": 1}, {"side": 2}, branch="side")
    merge(stream, "side", "main")
    put(stream, {"after": True})


@pytest.mark.django_db
def test_states_of_reads_stored_and_recomputed_states_together(project: Project) -> None:
    stream = create_stream(project, "sel")
    set_policy(stream, make_policy("selective", snapshot_every=5), actor="alice")
    versions = _fill(stream, 12, batch=12)
    found = states_of(versions)
    assert [canonical.state_hash(found[v.pk]) for v in versions] == [v.state_id for v in versions]


@pytest.mark.django_db
def test_forking_a_selective_stream_stores_the_new_head(project: Project) -> None:
    stream = create_stream(project, "sel")
    set_policy(stream, make_policy("selective", snapshot_every=50), actor="alice")
    versions = _fill(stream, 20, batch=20)
    assert not _stored(versions[7])
    fork(stream, "b", versions[7])
    assert _stored(versions[7])
    made = put(stream, {"on": "b"}, branch="b")
    assert state_of(made[0])["on"] == "b"


# -- the database's release path ---------------------------------------------------------


@pytest.mark.django_db
def test_without_a_permit_the_database_refuses_to_release(stream: Stream) -> None:
    (version,) = put(stream, {"a": 1})
    null = "'null'::jsonb" if connection.vendor == "postgresql" else "'null'"
    for sql, args in (
        (f"UPDATE continust_event SET payload = {null} WHERE position = %s", [version.event_id]),
        ("DELETE FROM continust_state WHERE hash = %s", [version.state_id]),
    ):
        with pytest.raises(DB_ERRORS), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, args)
    assert Event.objects.get(pk=version.event_id).payload == {"a": 1}


@pytest.mark.django_db
def test_a_permit_allows_exactly_the_release_and_nothing_else(project: Project) -> None:
    mine, other = create_stream(project, "mine"), create_stream(project, "other")
    (version,) = put(mine, {"a": 1})
    (elsewhere,) = put(other, {"b": 2})
    job = compaction.Compaction.objects.create(
        stream=mine, policy={"kind": "ephemeral"}, upto=version.pk
    )
    null = "'null'::jsonb" if connection.vendor == "postgresql" else "'null'"
    refused = [
        # another column than the payload
        ("UPDATE continust_event SET actor = 'mallory' WHERE position = %s", [version.event_id]),
        # a payload rewritten, not released
        (
            "UPDATE continust_event SET payload = '{\"a\": 2}' WHERE position = %s",
            [version.event_id],
        ),
        # another stream's event and state
        (f"UPDATE continust_event SET payload = {null} WHERE position = %s", [elsewhere.event_id]),
        ("DELETE FROM continust_state WHERE hash = %s", [elsewhere.state_id]),
        # rows that never change
        ("DELETE FROM continust_event WHERE position = %s", [version.event_id]),
        ("UPDATE continust_version SET branch = 'x' WHERE id = %s", [version.pk]),
        ("DELETE FROM continust_version WHERE id = %s", [version.pk]),
    ]
    for sql, args in refused:
        with pytest.raises(DB_ERRORS), transaction.atomic():
            ReleasePermit.objects.create(compaction=job, stream=mine)
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
    with transaction.atomic():
        ReleasePermit.objects.create(compaction=job, stream=mine)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE continust_event SET payload = {null} WHERE position = %s",
                [version.event_id],
            )
            cursor.execute("DELETE FROM continust_state WHERE hash = %s", [version.state_id])
        ReleasePermit.objects.all().delete()
    assert Event.objects.get(pk=version.event_id).payload is None
    assert not _stored(version)
    assert Event.objects.get(pk=elsewhere.event_id).payload == {"b": 2}


@pytest.mark.django_db
def test_a_released_state_is_an_error_not_a_guess(stream: Stream) -> None:
    set_policy(stream, make_policy("ephemeral", horizon_versions=2), actor="alice")
    versions = put(stream, *({"n": n} for n in range(6)))
    job = compaction.request(stream, actor="alice")
    compaction.run(job.pk)
    with pytest.raises(StateReleased, match="released"):
        state_of(versions[0])
    assert state_of(versions[-1]) == {"n": 5}


@pytest.mark.parametrize("age", [0, -1, -(10**24), 10**24])
def test_a_horizon_age_in_seconds_outside_its_range_is_refused_not_an_overflow(age):
    with pytest.raises(InvalidEvent, match="horizon age"):
        parse_age(age)

"""A linear append planned on the tip this process remembers, written in one statement.

PostgreSQL only: on SQLite (and inside a caller's transaction) every append takes the
locked path, which the rest of the suite covers.

    main:  v0 -- v1 -- v2          the tip this process remembers: v1
                  (v2 written elsewhere)
    a write planned on v1 is refused whole, and lands on v2 instead.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from continust.audit.integrity import verify
from continust.log import linear
from continust.log.policy import make_policy
from continust.log.store import NewEvent, append
from continust.log.tips import tips
from continust.models import Event, Version, VersionParent
from continust.read.records import version_record
from continust.retention.policies import set_policy
from tests.conftest import put

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement append is PostgreSQL's; SQLite takes the locked path")
    tips.clear()


# The writer's wake-up of the log's followers, in a transaction of its own after the
# append's commit (``continust.log.notices``): the append's own statement notifies nobody.
WAKE = "wake"


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the statements the one-statement path sends (the wake-up of the log's
    followers after its commit as ``WAKE``)."""
    sent: list[str] = []

    class Recording(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            text = str(query)
            sent.append(WAKE if "pg_notify" in text and "synchronous_commit" in text else text)
            return super().execute(query, params, **kwargs)

    monkeypatch.setattr(linear.psycopg, "Cursor", Recording)
    return sent


def test_an_append_after_the_first_is_one_statement_then_the_wake_up(stream, statements):
    (root,) = put(stream, {"a": 1})
    statements.clear()
    with CaptureQueriesContext(connection) as through_django:
        (version,) = put(stream, {"b": 2})
    assert len(through_django) == 0
    assert statements == [linear._APPEND, WAKE]
    assert version.generation == 1
    assert Version.objects.get(pk=version.pk).digest == version.digest
    # The parent is a column of the version: a linear append writes no link row.
    assert Version.objects.get(pk=version.pk).first_parent_id == root.pk == version.first_parent_id
    assert not VersionParent.objects.exists()
    assert verify(stream.project).ok


def test_a_batch_is_one_statement_with_versions_in_order(stream, statements):
    put(stream, {"a": 0})
    statements.clear()
    made = put(stream, *({"n": n} for n in range(50)))
    assert statements == [linear._APPEND, WAKE]
    assert [v.generation for v in made] == list(range(1, 51))
    parents = dict(
        Version.objects.filter(pk__in=[v.pk for v in made]).values_list("id", "first_parent_id")
    )
    assert not VersionParent.objects.exists()
    assert [parents[v.pk] for v in made[1:]] == [v.pk for v in made[:-1]]
    assert Event.objects.filter(stream=stream).count() == 51
    assert verify(stream.project).ok


def test_a_process_without_the_tip_reads_it_in_one_query(stream, statements):
    put(stream, {"a": 1})
    tips.clear()
    statements.clear()
    with CaptureQueriesContext(connection) as through_django:
        (version,) = put(stream, {"b": 2})
    assert len(through_django) == 0
    assert statements == [linear._TIP, linear._APPEND, WAKE]
    assert version.generation == 1 and verify(stream.project).ok


def test_a_tip_that_moved_is_refused_whole_and_the_append_lands_on_the_new_head(stream, statements):
    put(stream, {"a": 1})
    (v1,) = put(stream, {"b": 2})
    remembered = tips.get(stream.pk, "main")
    with transaction.atomic():  # the locked path: another writer, as far as the tip knows
        (v2,) = put(stream, {"c": 3})
    tips.put(remembered)
    statements.clear()
    (v3,) = put(stream, {"d": 4})
    assert statements == [linear._APPEND, linear._TIP, linear._APPEND, WAKE]
    assert Version.objects.get(pk=v3.pk).first_parent_id == v2.pk
    assert v3.generation == 3
    assert list(
        Event.objects.filter(stream=stream).order_by("seq").values_list("seq", flat=True)
    ) == [1, 2, 3, 4]
    assert Version.objects.filter(stream=stream).count() == 4
    assert verify(stream.project).ok
    assert v1.pk < v2.pk < v3.pk


def test_a_changed_policy_voids_the_tip(stream, alice):
    put(stream, {"a": 1})
    put(stream, {"b": 2})
    set_policy(stream, make_policy("selective", snapshot_every=2), actor="alice")
    stream.refresh_from_db()
    made = put(stream, *({"n": n} for n in range(5)))
    # Selective: only every second generation and the new head keep a stored state.
    stored = [v.generation for v in made if v.state_id in _stored_hashes(made)]
    assert stored == [2, 4, 6]
    assert verify(stream.project).ok


def test_a_retried_event_id_answers_the_first_versions(stream):
    put(stream, {"a": 1})
    event = NewEvent("set", {"b": 2}, id=uuid.uuid4())
    first = append(stream, [event])
    again = append(stream, [event])
    assert first.created and not again.created
    assert [v.pk for v in again.versions] == [v.pk for v in first.versions]
    assert Event.objects.filter(stream=stream).count() == 2


def _stored_hashes(versions: list[Version]) -> set[str]:
    from continust.models import State

    return set(
        State.objects.filter(pk__in=[v.state_id for v in versions]).values_list("hash", flat=True)
    )


def test_causes_are_checked_in_the_same_statement(project, stream, statements):
    from continust.core.errors import UnknownCausation
    from continust.log.projects import create_stream

    (cause,) = put(create_stream(project, "orders"), {"order": 1})
    put(stream, {"a": 1})
    statements.clear()
    first = NewEvent("set", {"b": 2}, id=uuid.uuid4(), causation=cause.event.id)
    second = NewEvent("set", {"c": 3}, causation=first.id)  # an earlier event of the batch
    made = append(stream, [first, second]).versions
    assert statements == [linear._APPEND, WAKE]
    assert [Event.objects.get(pk=v.event_id).causation_id for v in made] == [
        cause.event.id,
        first.id,
    ]
    with pytest.raises(UnknownCausation, match="names no earlier event"):
        append(stream, [NewEvent("set", {"d": 4}, causation=uuid.uuid4())])
    assert Event.objects.filter(stream=stream).count() == 3
    assert verify(project).ok


def _patch(*operations: dict[str, Any], id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent("patch", {"patch": list(operations)}, id=id)


def test_an_event_refused_on_a_stale_tip_lands_on_the_head_that_accepts_it(project):
    from continust.log.projects import create_stream

    doc = create_stream(project, "doc", reducer="patch")
    append(doc, [_patch({"op": "add", "path": "/a", "value": 1})])
    remembered = tips.get(doc.pk, "main")
    with transaction.atomic():  # another writer, as far as the tip knows
        append(doc, [_patch({"op": "add", "path": "/b", "value": 2})])
    tips.put(remembered)
    # /b is not in the remembered head's state, but it is in the head's.
    (version,) = append(doc, [_patch({"op": "remove", "path": "/b"})]).versions
    assert version.generation == 2
    assert verify(project).ok


def test_a_retried_batch_the_reducer_would_refuse_now_answers_the_first_versions(project):
    from continust.log.projects import create_stream

    doc = create_stream(project, "doc", reducer="patch")
    append(doc, [_patch({"op": "add", "path": "/a", "value": 1})])
    event = _patch({"op": "remove", "path": "/a"}, id=uuid.uuid4())
    first = append(doc, [event])
    again = append(doc, [event])  # /a is gone from the head: only the first time folds
    assert not again.created
    assert [v.pk for v in again.versions] == [v.pk for v in first.versions]


def test_an_append_in_a_transaction_the_caller_manages_takes_the_locked_path(stream):
    put(stream, {"a": 1})
    remembered = tips.get(stream.pk, "main")
    with transaction.atomic():
        put(stream, {"b": 2})
    tips.put(remembered)  # stale: a refused statement would abort the caller's transaction
    transaction.set_autocommit(False)
    try:
        (version,) = put(stream, {"c": 3})
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert version.generation == 2
    assert Event.objects.filter(stream=stream).count() == 3


def _index_entries_read() -> int:
    """Index entries read so far in the log's tables (PostgreSQL's statistics, flushed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes "
            "WHERE relname IN ('continust_event', 'continust_branchmove')"
        )
        (read,) = cursor.fetchone()
    return int(read)


def _entries_read_by_one_append(stream: Any) -> int:
    before = _index_entries_read()
    put(stream, {"n": 1})
    return _index_entries_read() - before


def test_an_append_reads_as_few_index_entries_after_hundreds_of_appends(stream):
    """The cause check and the branch's guard probe one entry each; neither reads the
    project's log or the branch's moves (without ANALYZE, as a server with autovacuum off
    leaves them), so an append costs the same on a long log as on a short one."""
    for n in range(5):
        put(stream, {"n": n})
    early = _entries_read_by_one_append(stream)
    for n in range(200):
        put(stream, {"n": n})
    late = _entries_read_by_one_append(stream)
    assert late <= early + 2, (early, late)


def test_the_append_is_parsed_and_planned_once_per_connection(stream):
    """Django turns psycopg's preparing off (``prepare_threshold=None``), which silently
    made ``prepare=True`` a no-op: PostgreSQL parsed and planned the statement on every
    append, most of its server time."""
    put(stream, {"a": 1})
    put(stream, {"b": 2})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["%INSERT INTO continust_event%"],
        )
        plans = cursor.fetchall()
    assert plans and plans[0][0] >= 1


def test_the_versions_a_batch_answers_carry_their_events_and_stream(stream):
    """The API answers a batch with a record of every version: reading each one's event
    and stream must cost no query (a version whose event was not kept with it cost one
    query a version, 1,000 a batch)."""
    put(stream, {"a": 0})
    appended = append(stream, [NewEvent("counted", {"n": n}) for n in range(20)])
    with CaptureQueriesContext(connection) as queries:
        records = [version_record(v, parents=appended.parents[v.pk]) for v in appended.versions]
    assert [q["sql"] for q in queries.captured_queries] == []
    assert [r["event_type"] for r in records] == ["counted"] * 20
    assert {r["stream"] for r in records} == {stream.name}

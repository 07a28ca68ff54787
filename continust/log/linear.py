"""A linear append in one statement: the common case of the write path, on PostgreSQL.

When this process knows the branch's tip (``continust.log.tips``), an append of
events to that branch needs nothing from the database before it writes: the events
are chained, folded and hashed here, and ONE statement, run in autocommit (its own
transaction), moves the stream's chain end and the branch head by compare-and-set
and inserts the events, versions (each naming its parent: no link row), states and
the branch move. If any
value the plan relied on moved meanwhile, ``continust_require`` raises, the
statement rolls back whole, and the caller falls back to the locked path, which
reads afresh. So a single append is one round trip, and writers to different
streams commit side by side.

Inside a caller's transaction, on SQLite, or without a tip, ``plan`` answers None and
the locked path (``continust.log.store``) does the work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models.base import ModelState
from psycopg.types.numeric import Int8Dumper

from continust.core.database import on_postgresql, outside_transactions, preparing_cursor
from continust.core.errors import ContinustError
from continust.log import canonical, moves, notices
from continust.log.folding import fold_event, hashed_storable_state
from continust.log.policy import Policy
from continust.log.tips import Tip, tips
from continust.models import Event, Version

M = TypeVar("M", Event, Version)

if TYPE_CHECKING:
    from continust.log.store import NewEvent
    from continust.models import Stream

# The statement the write takes. Causes outside the batch must be events of the project
# (``c``), or nothing is written and the count found says so; the check starts from the
# causes named (none, for most appends), each one index probe of (project, id), so its
# cost never grows with the project's log, whatever the planner's statistics say. Every
# CTE that writes joins ``b`` (the branch moved by compare-and-set), which joins ``ids``,
# which joins ``s`` (the stream's chain end moved by compare-and-set): locks are taken
# stream first, branch second, as the locked path takes them, and nothing is written
# unless both moved. Each sequence is looked up once a statement (a scalar subquery): called
# per row, ``pg_get_serial_sequence`` read the catalog 2,000 times a 1,000-event batch,
# a tenth of the server's time.
_APPEND = (
    """
WITH c AS (
    SELECT count(*) AS found FROM unnest(%(causes)b::uuid[]) AS cause(id)
    WHERE EXISTS (SELECT 1 FROM continust_event
                  WHERE project_id = %(project)s AND id = cause.id)
), s AS (
    UPDATE continust_stream SET event_count = %(seq_to)s, last_hash = %(hash_to)s
    WHERE id = %(stream)s AND event_count = %(seq_from)s AND last_hash = %(hash_from)s
      AND reducer = %(reducer)s AND reducer_version = %(reducer_version)s
      AND retention = %(retention)s AND snapshot_every = %(snapshot_every)s
      AND (SELECT found FROM c) = %(cause_count)s
    RETURNING id
), drawn AS MATERIALIZED (
    SELECT nextval((SELECT pg_get_serial_sequence('continust_event', 'position')::regclass))
               AS position,
           nextval((SELECT pg_get_serial_sequence('continust_version', 'id')::regclass))
               AS version
    FROM generate_series(1, %(count)s), s
), ids AS MATERIALIZED (
    SELECT p.n, p.position, v.version
    FROM (SELECT row_number() OVER (ORDER BY position) AS n, position FROM drawn) p
    JOIN (SELECT row_number() OVER (ORDER BY version) AS n, version FROM drawn) v USING (n)
), b AS (
    UPDATE continust_branch SET head_id = (SELECT max(version) FROM ids),
                                move_hash = %(move_hash)s
    WHERE id = %(branch)s AND head_id = %(head)s AND move_hash = %(prev_move_hash)s
      AND EXISTS (SELECT 1 FROM continust_version WHERE id = %(head)s AND digest = %(head_digest)s)
      AND EXISTS (SELECT 1 FROM ids)
    RETURNING id
), rows AS MATERIALIZED (
    SELECT ids.n, ids.position, ids.version,
           COALESCE(lag(ids.version) OVER (ORDER BY ids.n), %(head)s) AS parent,
           r.id, r.type, r.timestamp, r.payload, r.causation, r.correlation, r.actor,
           r.prev_hash, r.hash, r.state, r.digest
    FROM unnest(%(event_ids)b::uuid[], %(types)b::text[], %(timestamps)b::timestamptz[],
                %(payloads)b::text[], %(causations)b::uuid[], %(correlations)b::uuid[],
                %(actors)b::text[], %(prev_hashes)b::text[], %(hashes)b::text[],
                %(states)b::text[], %(digests)b::text[])
         WITH ORDINALITY AS r(id, type, timestamp, payload, causation, correlation, actor,
                              prev_hash, hash, state, digest, n)
    JOIN ids USING (n)
    WHERE EXISTS (SELECT 1 FROM b)
), e AS (
    INSERT INTO continust_event (position, id, project_id, stream_id, seq, type, timestamp,
                                 payload, causation_id, correlation_id, actor, prev_hash, hash)
    SELECT position, id, %(project)s, %(stream)s, %(seq_from)s + n, type, timestamp, payload::jsonb,
           causation, correlation, actor, prev_hash, hash
    FROM rows
), v AS (
    INSERT INTO continust_version (id, stream_id, event_id, state_id, first_parent_id,
                                   generation, digest, key, branch, reducer, reducer_version,
                                   created_at)
    SELECT version, %(stream)s, position, state, parent, %(generation)s + n, digest, NULL,
           %(branch_name)s, %(reducer)s, %(reducer_version)s, %(now)s
    FROM rows
), st AS (
    INSERT INTO continust_state (hash, data)
    SELECT h, d::jsonb FROM unnest(%(state_hashes)b::text[], %(state_texts)b::text[]) AS x(h, d)
    WHERE EXISTS (SELECT 1 FROM b)
    ON CONFLICT DO NOTHING
), m AS (
    INSERT INTO continust_branchmove (branch_id, old_head_id, new_head_id, reason, actor, at,
                                      prev_hash, hash)
    SELECT %(branch)s, %(head)s, max(version), 'append', %(last_actor)s, %(now)s,
           %(prev_move_hash)s, %(move_hash)s
    FROM ids HAVING EXISTS (SELECT 1 FROM b)
)
SELECT continust_require(EXISTS (SELECT 1 FROM b) OR (SELECT found FROM c) <> %(cause_count)s,
                         'continust: the tip moved'),
       array(SELECT position FROM ids ORDER BY n), array(SELECT version FROM ids ORDER BY n),
       (SELECT found FROM c), """
    + notices.WAKE_AFTER_COMMIT
    + """
"""
)

# The SQLSTATE continust_require raises with (see the migration that creates it).
TIP_MOVED = "CN001"


@dataclass(frozen=True)
class Planned:
    """A linear append, chained, folded and hashed, ready for one statement."""

    tip: Tip
    params: dict[str, Any]
    events: list[Event]
    versions: list[Version]
    parents: dict[int, list[int]]
    next_tip: Tip


def usable() -> bool:
    """Tell whether the one-statement path can run: PostgreSQL, outside any transaction."""
    # Not in a transaction the caller manages either (autocommit off): a refused statement
    # would abort it.
    return on_postgresql() and outside_transactions()


# Reading a branch's tip: one query, no lock (the write checks every value it relies on).
_TIP = """
SELECT s.event_count, s.last_hash, s.reducer, s.reducer_version, s.retention, s.snapshot_every,
       b.id, b.move_hash, b.head_id, v.digest, v.generation, v.state_id, st.data::text
FROM continust_stream s
JOIN continust_branch b ON b.stream_id = s.id AND b.name = %(branch)s
JOIN continust_version v ON v.id = b.head_id
LEFT JOIN continust_state st ON st.hash = v.state_id
WHERE s.id = %(stream)s
"""

# Appends to one branch from several processes make each other's tips stale; after this
# many refused writes in a row the locked path queues the writer instead.
ATTEMPTS = 3


def append(
    stream: Stream,
    events: Sequence[NewEvent],
    branch: str,
    *,
    expected_head: int | None = None,
    check_head: bool = False,
) -> Planned | None:
    """Append on the branch's tip, remembered or read (one query), and write it in one
    statement; answer the written plan, or None for the locked path: a branch that does
    not exist yet, a head that is not the caller's expected one, an event the reducer
    refuses on the tip, an event id taken or a cause unknown (it says which is right, and
    names the event), or a branch too busy to catch."""
    fresh = False
    for _ in range(ATTEMPTS):
        tip = tips.get(stream.pk, branch)
        if tip is None:
            tip, fresh = read_tip(stream, branch), True
            if tip is None:
                return None
        if (
            (check_head and expected_head != tip.head_id)
            or tip.reducer != stream.reducer
            or tip.reducer_version != stream.reducer_version
        ):
            if fresh:
                return None
            tips.forget(stream.pk, branch)
            continue
        try:
            planned = plan(stream, tip, events, branch)
        except ContinustError:
            # Refused on a tip that may be stale, or by a batch recorded already (a retry):
            # the locked path folds on the head itself, or answers the first versions.
            return None
        try:
            if write(planned) is not None:
                return planned
        except (IdTaken, UnknownCause):
            return None  # the locked path says which event, and why
    return None


def read_tip(stream: Stream, branch: str) -> Tip | None:
    """Read a branch's tip in one query; None when the branch or its head's state is absent."""
    connection.ensure_connection()
    with connection.wrap_database_errors, _cursor() as cursor:
        cursor.execute(_TIP, {"stream": stream.pk, "branch": branch}, prepare=True)
        row = cursor.fetchone()
    if row is None or row[12] is None:
        return None
    (
        event_count,
        last_hash,
        reducer,
        reducer_version,
        retention,
        snapshot_every,
        branch_id,
        move_hash,
        head_id,
        digest,
        generation,
        state_hash,
        state_text,
    ) = row
    tip = Tip(
        stream_id=stream.pk,
        event_count=event_count,
        last_hash=last_hash,
        reducer=reducer,
        reducer_version=reducer_version,
        retention=retention,
        snapshot_every=snapshot_every,
        branch_id=branch_id,
        branch=branch,
        move_hash=move_hash,
        head_id=head_id,
        head_digest=digest,
        head_generation=generation,
        head_state_hash=state_hash,
        head_state_text=state_text,
    )
    tips.put(tip)
    return tip


def _cursor() -> psycopg.Cursor[Any]:
    """A server-binding cursor on Django's connection, every integer bound as bigint (so a
    statement is prepared once per connection, whatever its values' sizes)."""
    cursor = preparing_cursor()
    raw = connection.connection
    cursor.adapters.register_dumper(int, Int8Dumper)
    if not getattr(raw, "_continust_generic_plans", False):
        # Plan the prepared statements once: the append's plan is the same whatever its
        # values, and re-planning its fifteen parts cost more than running them. Only
        # server-bound statements are prepared; Django's own queries are not affected.
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        raw._continust_generic_plans = True
    return cursor


def plan(stream: Stream, tip: Tip, events: Sequence[NewEvent], branch: str) -> Planned:
    """Chain, fold and hash the events on the tip, ready for one statement."""
    policy = Policy(tip.retention, snapshot_every=tip.snapshot_every)
    state: Any = json.loads(tip.head_state_text)
    now = datetime.now(UTC)
    last_hash, parent_digest = tip.last_hash, tip.head_digest
    columns: dict[str, list[Any]] = {
        k: []
        for k in (
            "event_ids",
            "types",
            "timestamps",
            "payloads",
            "causations",
            "correlations",
            "actors",
            "prev_hashes",
            "hashes",
            "states",
            "digests",
        )
    }
    stored: dict[str, str] = {}
    models: list[tuple[Event, str, str, int]] = []
    state_hash, state_text = tip.head_state_hash, tip.head_state_text
    for index, new in enumerate(events):
        seq = tip.event_count + index + 1
        event_id = new.id or uuid.uuid4()
        moment = new.timestamp or now
        payload_text = canonical.canonical_json(new.payload)
        digest = canonical.event_hash_of_text(
            last_hash,
            id=str(event_id),
            seq=seq,
            type=new.type,
            timestamp=moment,
            payload_text=payload_text,
            causation=str(new.causation) if new.causation else None,
            correlation=str(new.correlation) if new.correlation else None,
            actor=new.actor,
        )
        state = fold_event(
            tip.reducer,
            tip.reducer_version,
            state,
            event_id=str(event_id),
            type=new.type,
            payload=new.payload,
            actor=new.actor,
        )
        state_hash, state_text = hashed_storable_state(
            state,
            reducer=tip.reducer,
            reducer_version=tip.reducer_version,
            event_id=str(event_id),
        )
        generation = tip.head_generation + index + 1
        if policy.stores_at_append(generation, last=index == len(events) - 1, merge=False):
            stored[state_hash] = state_text
        version_digest = canonical.version_digest(
            event_hash=digest,
            parents=[parent_digest],
            state=state_hash,
            reducer=tip.reducer,
            reducer_version=tip.reducer_version,
        )
        for key, value in (
            ("event_ids", event_id),
            ("types", new.type),
            ("timestamps", moment),
            ("payloads", payload_text),
            ("causations", new.causation),
            ("correlations", new.correlation),
            ("actors", new.actor),
            ("prev_hashes", last_hash),
            ("hashes", digest),
            ("states", state_hash),
            ("digests", version_digest),
        ):
            columns[key].append(value)
        models.append(
            (
                _event(
                    None,
                    event_id,
                    stream.project_id,
                    stream.pk,
                    seq,
                    new.type,
                    moment,
                    new.payload,
                    new.causation,
                    new.correlation,
                    new.actor,
                    last_hash,
                    digest,
                ),
                state_hash,
                version_digest,
                generation,
            )
        )
        last_hash, parent_digest = digest, version_digest
    earlier: set[Any] = set()
    causes: set[Any] = set()
    for new in events:
        if new.causation is not None and new.causation not in earlier:
            causes.add(new.causation)
        earlier.add(new.id)
    move_hash = moves.next_hash(
        tip.move_hash,
        branch=branch,
        old_digest=tip.head_digest,
        new_digest=parent_digest,
        reason="append",
        actor=events[-1].actor,
        at=now,
    )
    params = {
        **columns,
        "project": stream.project_id,
        "stream": stream.pk,
        "seq_from": tip.event_count,
        "seq_to": tip.event_count + len(events),
        "hash_from": tip.last_hash,
        "hash_to": last_hash,
        "reducer": tip.reducer,
        "reducer_version": tip.reducer_version,
        "retention": tip.retention,
        "snapshot_every": tip.snapshot_every,
        "count": len(events),
        "branch": tip.branch_id,
        "branch_name": branch,
        "head": tip.head_id,
        "head_digest": tip.head_digest,
        "generation": tip.head_generation,
        "now": now,
        "last_actor": events[-1].actor,
        "state_hashes": list(stored),
        "state_texts": list(stored.values()),
        "prev_move_hash": tip.move_hash,
        "move_hash": move_hash,
        "causes": list(causes),
        "cause_count": len(causes),
    }
    versions = [
        _version(
            None,
            stream.pk,
            None,
            state_hash,
            None,
            generation,
            digest,
            None,
            branch,
            tip.reducer,
            tip.reducer_version,
            now,
        )
        for _, state_hash, digest, generation in models
    ]
    for (event, *_), version in zip(models, versions, strict=True):
        # What assigning the relations would cache, without the descriptors' checks, 2,000
        # calls a 1,000-event batch: the objects are new and of the right models. (A
        # version's event is assigned by ``write``, once the event has its position.)
        event._state.fields_cache["stream"] = stream
        version._state.fields_cache["stream"] = stream
    next_tip = Tip(
        stream_id=stream.pk,
        event_count=tip.event_count + len(events),
        last_hash=last_hash,
        reducer=tip.reducer,
        reducer_version=tip.reducer_version,
        retention=tip.retention,
        snapshot_every=tip.snapshot_every,
        branch_id=tip.branch_id,
        branch=branch,
        move_hash=move_hash,
        head_id=0,
        head_digest=parent_digest,
        head_generation=tip.head_generation + len(events),
        head_state_hash=state_hash,
        head_state_text=state_text,
    )
    return Planned(tip, params, [e for e, *_ in models], versions, {}, next_tip)


class IdTaken(Exception):
    """An event id of the append is recorded in the project already."""


class UnknownCause(Exception):
    """A cause the append names is not an earlier event of the project."""


def write(planned: Planned) -> list[Version] | None:
    """Run the planned statement; return the versions, or None when the tip had moved
    (``IdTaken`` when an event id is recorded already)."""
    connection.ensure_connection()
    try:
        with _cursor() as cursor:
            # Binary parameters: arrays of text need no escaping on the way.
            cursor.execute(_APPEND, planned.params, prepare=True, binary=True)
            row = cursor.fetchone()
    except psycopg.errors.UniqueViolation as err:
        tips.forget(planned.tip.stream_id, planned.tip.branch)
        raise IdTaken(str(err)) from err
    except psycopg.Error as err:
        tips.forget(planned.tip.stream_id, planned.tip.branch)
        if err.sqlstate == TIP_MOVED:
            return None
        # As Django raises a driver error: its class (OperationalError for a lock timeout,
        # which answers 503), and a broken connection marked for closing.
        with connection.wrap_database_errors:
            raise
    assert row is not None
    if row[3] != planned.params["cause_count"]:
        raise UnknownCause(f"{row[3]} of {planned.params['cause_count']} causes are recorded")
    notices.wake(connection.connection, planned.params["project"])
    positions, version_ids = row[1], row[2]
    parent = planned.tip.head_id
    for event, version, position, version_id in zip(
        planned.events, planned.versions, positions, version_ids, strict=True
    ):
        event.position = position
        version.id = version_id
        version.event = event  # the id and the cached event: readers ask for both
        version.first_parent_id = parent
        planned.parents[version_id] = [parent]
        parent = version_id
    tips.put(_with_head(planned.next_tip, version_ids[-1]))
    return planned.versions


_EVENT_COLUMNS = [f.attname for f in Event._meta.concrete_fields]
_VERSION_COLUMNS = [f.attname for f in Version._meta.concrete_fields]


def _event(*values: Any) -> Event:
    """An Event from its column values in model order, as Django builds a row it loaded
    (``Model.from_db``), without the per-field work of ``__init__``."""
    return _loaded(Event, _EVENT_COLUMNS, values)


def _version(*values: Any) -> Version:
    """A Version from its column values in model order."""
    return _loaded(Version, _VERSION_COLUMNS, values)


def _loaded(model: type[M], columns: list[str], values: tuple[Any, ...]) -> M:
    obj = model.__new__(model)
    obj.__dict__.update(zip(columns, values, strict=True))
    obj._state = state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS  # the connection every statement here runs on
    return obj


def _with_head(tip: Tip, head_id: int) -> Tip:
    return Tip(**{**tip.__dict__, "head_id": head_id})

"""A project's log in order (``$all``): every event of every stream, read by position.

A **log position** names a place in a project's log: two numbers, the transaction that
wrote the event and the event's own position, written ``T.P`` (``0.0`` is the
beginning). Reading after a log position returns the events that come after it, oldest
first, and the log position to read after next. Read again from there and nothing is
missed and nothing comes twice, however many writers commit meanwhile:

- On PostgreSQL, an event's position is drawn from a sequence when it is written, so a
  writer that drew 10 can commit after one that drew 11. Ordering by position alone, a
  reader that saw 11 would pass 10 by for good. So each event records its transaction
  (an ``xid8``, which never wraps; migration 0015), the log is ordered by (transaction,
  position), and a read returns only events written by transactions older than the
  oldest one still running when it reads (from its snapshot, leaving out those
  ``pg_stat_activity`` shows in other databases): every later commit has
  a transaction at least that new, so it can only ever land after what was returned.
  An event appears once its transaction and every older one have ended.
  A reader inside a transaction that has itself appended also gets its own events
  (as everywhere in a transaction), and goes on from the last one it was given.
  Followers read in transactions of their own. A transaction left open for long
  anywhere on the server holds back what is settled: events appear when it ends.
- On SQLite, one writer at a time holds the database from its first write to its
  commit, so positions are already commit order; the transaction part is 0.

Filters (stream, event type prefix, actor, correlation id, time) narrow what a page
returns, never where the next read starts: a page that is not full says the reader
has caught up with everything settled, and its next log position is past all of it,
so a filtered reader does not scan the same events again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import JsonbLoader

from continust.core.database import on_postgresql, snapshot
from continust.core.parsing import format_cursor, parse_cursor
from continust.models import Event, Project, Stream

# The largest event position: a log position (T, LAST) is past every event of T.
LAST = 2**63 - 1
PAGE_MAX = 1000


@dataclass(frozen=True, order=True)
class LogPosition:
    """A place in a project's log: after transaction ``tx``'s event at ``position``."""

    tx: int = 0
    position: int = 0

    def __str__(self) -> str:
        return format_cursor(self.tx, self.position)

    @classmethod
    def parse(cls, text: str) -> LogPosition:
        """Read ``T.P`` (or ``0`` for the beginning); ``InvalidName`` names what is wrong."""
        if text.strip() == "0":
            return START
        tx, position = parse_cursor(text.strip(), 2)
        return cls(tx, position)


START = LogPosition()


@dataclass(frozen=True)
class LogFilter:
    """What a reader wants to see of the log; empty fields match everything."""

    stream: str = ""
    type_prefix: str = ""
    actor: str = ""
    correlation: uuid.UUID | None = None
    since: datetime | None = None  # event time, inclusive
    until: datetime | None = None  # event time, exclusive

    def narrow(self, events: QuerySet[Event]) -> QuerySet[Event]:
        if self.stream:
            events = events.filter(stream__name=self.stream)
        if self.type_prefix:
            events = events.filter(type__startswith=self.type_prefix)
        if self.actor:
            events = events.filter(actor=self.actor)
        if self.correlation is not None:
            events = events.filter(correlation_id=self.correlation)
        if self.since is not None:
            events = events.filter(timestamp__gte=self.since)
        if self.until is not None:
            events = events.filter(timestamp__lt=self.until)
        return events


@dataclass
class LogEntry:
    """An event with its place in the project's log."""

    at: LogPosition
    event: Event


@dataclass
class LogPage:
    """Events after a log position, oldest first, and where to read next."""

    entries: list[LogEntry] = field(default_factory=list)
    next: LogPosition = START
    # False when the page is full: more settled events may follow right away.
    caught_up: bool = True


def read_log(
    project: Project,
    after: LogPosition = START,
    *,
    limit: int = 100,
    where: LogFilter | None = None,
) -> LogPage:
    """Return up to ``limit`` events of ``project`` after ``after``, in log order."""
    limit = max(1, min(limit, PAGE_MAX))
    where = where or LogFilter()
    events = where.narrow(Event.objects.filter(project=project))
    if on_postgresql():
        return _read_postgresql(events, after, limit)  # one statement: one snapshot
    with snapshot():
        return _read_sqlite(project, events.select_related("stream"), after, limit)


def _read_postgresql(events: QuerySet[Event], after: LogPosition, limit: int) -> LogPage:
    horizon, own, entries = _fetch(
        events.extra(
            select={"log_tx": "continust_event.tx::text::bigint"},
            where=[
                "(continust_event.tx, continust_event.position) > (%s::text::xid8, %s)",
                "(continust_event.tx < h.horizon::text::xid8"
                " OR continust_event.tx = pg_current_xact_id_if_assigned())",
            ],
            params=[str(after.tx), after.position],
            order_by=["continust_event.tx", "continust_event.position"],
        ).values_list(*_EVENT_FIELDS, "log_tx")[:limit]
    )
    if len(entries) == limit:
        return LogPage(entries, entries[-1].at, caught_up=False)
    if own:
        # This transaction appended: it reads its own events at once, and goes on from
        # the last one it was given, not past transactions still running beside it.
        return LogPage(entries, _past(START, after, entries), caught_up=True)
    # Everything settled was scanned: the next read starts past every transaction that
    # had ended when this one read (one statement, so one snapshot: the horizon and the
    # rows agree).
    return LogPage(entries, _past(LogPosition(horizon - 1, LAST), after, entries), caught_up=True)


_EVENT_FIELDS = [f.attname for f in Event._meta.concrete_fields]
_STREAM_ID = _EVENT_FIELDS.index("stream_id")

# The horizon and whether this transaction has written, with the page's rows, in one
# statement: one snapshot, one round trip. The horizon is the oldest transaction still
# running that may write to this database, every older one having ended: the snapshot's
# oldest running transaction (``pg_snapshot_xmin``) counts those of every database on the
# server, but one that ``pg_stat_activity`` shows working in another database cannot write
# here, so it does not hold readers back (one that has ended since the snapshot, or whose
# database this role may not see, still counts). The rows' query reads ``h.horizon``.
_PAGE = """
SELECT h.horizon, h.own, e.* FROM (
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    elsewhere AS (
        SELECT backend_xid FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datid IS DISTINCT FROM
              (SELECT oid FROM pg_database WHERE datname = current_database())
    )
    SELECT COALESCE(
               (SELECT min(running)::text::bigint FROM snap, pg_snapshot_xip(snap.s) AS running
                WHERE xid(running) NOT IN (SELECT backend_xid FROM elsewhere)),
               (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)) AS horizon,
           pg_current_xact_id_if_assigned() IS NOT NULL AS own
) h
LEFT JOIN LATERAL ({rows}) e ON true ORDER BY e.log_tx, e.position
"""


def _fetch(rows: QuerySet[Event, tuple[Any, ...]]) -> tuple[int, bool, list[LogEntry]]:
    """The horizon, whether this transaction wrote, and the page's events.

    The rows are read as plain tuples and made into events (with their streams) without
    the ORM's per-row work, where a catch-up read of many pages spent most of its time:
    psycopg's own loaders for the timestamp and the payload; the page's streams in one
    query."""
    sql, params = rows.query.sql_with_params()
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.adapters.register_loader("jsonb", JsonbLoader)
        cursor.execute(_PAGE.format(rows=sql), params)
        fetched = cursor.fetchall()
    horizon, own = int(fetched[0][0]), bool(fetched[0][1])
    alias = connection.alias
    streams = Stream.objects.in_bulk({full[2 + _STREAM_ID] for full in fetched} - {None})
    entries = []
    for full in fetched:
        row = full[2:]
        if row[0] is None:  # no event: the one row of the horizon alone
            continue
        event = _loaded(Event, _EVENT_FIELDS, row, alias)
        event._state.fields_cache["stream"] = streams[row[_STREAM_ID]]
        entries.append(LogEntry(LogPosition(int(row[-1]), event.position), event))
    return horizon, own, entries


M = TypeVar("M", bound=Model)


def _loaded(model: type[M], names: list[str], values: Sequence[Any], alias: str) -> M:
    """A model instance of loaded values, as ``Model.from_db`` makes one, without running
    ``__init__`` (which checks every field of every row again)."""
    instance: M = object.__new__(model)
    instance.__dict__.update(zip(names, values, strict=False))
    state = ModelState()
    state.adding = False
    state.db = alias
    instance._state = state
    return instance


def _read_sqlite(
    project: Project, events: QuerySet[Event], after: LogPosition, limit: int
) -> LogPage:
    rows = list(events.filter(position__gt=after.position).order_by("position")[:limit])
    entries = [LogEntry(LogPosition(0, e.position), e) for e in rows]
    if len(entries) == limit:
        return LogPage(entries, entries[-1].at, caught_up=False)
    newest = Event.objects.filter(project=project).order_by("-position").first()
    end = LogPosition(0, newest.position) if newest is not None else START
    return LogPage(entries, _past(end, after, entries), caught_up=True)


def _past(end: LogPosition, after: LogPosition, entries: list[LogEntry]) -> LogPosition:
    """Where a caught-up reader goes on: past all it was given and all that had settled."""
    return max(end, after, entries[-1].at if entries else START)

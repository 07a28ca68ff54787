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
  oldest one still running when it reads (``pg_snapshot_xmin``, leaving out other
  databases' transactions): every later commit has
  a transaction at least that new, so it can only ever land after what was returned.
  An event appears once its transaction and every older one have ended.
  A reader inside a transaction that has itself appended also gets its own events
  (as everywhere in a transaction), and goes on from the last one it was given.
  Followers read in transactions of their own. A transaction left open for long in
  the same database holds back what is settled: events appear when it ends. Those of
  other databases on the server cannot write these events and are left out.
- On SQLite, one writer at a time holds the database from its first write to its
  commit, so positions are already commit order; the transaction part is 0.

Filters (stream, event type prefix, actor, correlation id, time) narrow what a page
returns, never where the next read starts: a page that is not full says the reader
has caught up with everything settled, and its next log position is past all of it,
so a filtered reader does not scan the same events again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from continust.core.database import on_postgresql, snapshot
from continust.core.parsing import format_cursor, parse_cursor
from continust.models import Event, Project

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
    events = where.narrow(Event.objects.filter(project=project)).select_related("stream")
    with snapshot():
        if on_postgresql():
            return _read_postgresql(events, after, limit)
        return _read_sqlite(project, events, after, limit)


def _read_postgresql(events: QuerySet[Event], after: LogPosition, limit: int) -> LogPage:
    horizon, own = _settled_below()
    rows = list(
        events.extra(
            select={"log_tx": "continust_event.tx::text::bigint"},
            where=[
                "(continust_event.tx, continust_event.position) > (%s::text::xid8, %s)",
                "(continust_event.tx < %s::text::xid8"
                " OR continust_event.tx = pg_current_xact_id_if_assigned())",
            ],
            params=[str(after.tx), after.position, str(horizon)],
            order_by=["continust_event.tx", "continust_event.position"],
        )[:limit]
    )
    entries = [LogEntry(LogPosition(_tx(e), e.position), e) for e in rows]
    if len(entries) == limit:
        return LogPage(entries, entries[-1].at, caught_up=False)
    if own:
        # This transaction appended: it reads its own events at once, and goes on from
        # the last one it was given, not past transactions still running beside it.
        return LogPage(entries, _past(START, after, entries), caught_up=True)
    # Everything settled was scanned: the next read starts past every transaction that
    # had ended when this one read (the same snapshot: ``snapshot()`` is REPEATABLE READ).
    return LogPage(entries, _past(LogPosition(horizon - 1, LAST), after, entries), caught_up=True)


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


# The oldest transaction this snapshot still sees running, leaving out those of other
# databases of the server (they cannot write this database's events): with none, the
# snapshot's xmax, below which every transaction has a number. A transaction that ended
# after the snapshot was taken is not in ``pg_stat_activity`` any more and counts as
# running, as it still is for this snapshot. ``pg_stat_activity`` shows every session's
# database and transaction id to every role; xid8 numbers its transactions with the
# epoch, xid without, hence the modulo.
SETTLED_BELOW = """
SELECT coalesce(
    (SELECT min(running::text::bigint)
       FROM pg_snapshot_xip(pg_current_snapshot()) AS running
      WHERE NOT EXISTS (
            SELECT 1 FROM pg_stat_activity AS other
             WHERE other.backend_xid IS NOT NULL
               AND other.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
               AND other.backend_xid::text::bigint = running::text::bigint % 4294967296)),
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint),
    pg_current_xact_id_if_assigned() IS NOT NULL
"""


def _settled_below() -> tuple[int, bool]:
    """The oldest transaction of this database still running in this snapshot (all older
    ones of it ended), and whether this transaction has written."""
    with connection.cursor() as cursor:
        cursor.execute(SETTLED_BELOW)
        row = cursor.fetchone()
    return int(row[0]), bool(row[1])


def _tx(event: Any) -> int:
    return int(event.log_tx)

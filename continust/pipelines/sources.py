"""Reading the log from a durable cursor over the global event position.

The trap. ``Event.position`` comes from one PostgreSQL sequence, drawn while a
writer plans its batch, not when it commits. Two writers can therefore commit out
of order: T1 draws 103, T2 draws 105, T2 commits first. A reader that reads "every
position after my cursor" at that moment sees 105, moves its cursor past 103, and
never sees 103 once T1 commits.

The approach: remember the gaps. A :class:`LogCursor` is the highest position read
plus the positions below it that were missing when they were passed (gaps, kept as
ranges), each with the transaction horizon that decides its fate. Every poll

1. reads the gaps again: an event that appeared in one is delivered now;
2. reads past the highest position, up to a limit, and records the positions it
   skipped over as new gaps;
3. then takes the current snapshot's ``xmin`` and ``xmax``
   (``pg_current_snapshot()``): new gaps get this ``xmax``, and ``xmin`` is kept
   for the next poll.

Why that is sound. The store draws positions only after locking the stream row
(``lock_stream``: ``SELECT ... FOR UPDATE``), which gives the writer its
transaction id first, and the sequence hands numbers out in increasing order. So
the writer of a position p missing below a visible q had its xid before q
committed, hence before the read's snapshot: its xid is below the ``xmax`` taken
after the read. That writer either rolled back (the gap is forever) or had not
committed yet. Once a later snapshot's ``xmin`` (the oldest transaction still
running) is at or past that ``xmax``, every such writer has ended, and a gap still
empty when read *after* that snapshot stays empty: it is dropped. Nothing is
skipped, nothing is delivered twice (a position comes either from the range read
or from its gap), and the reader never waits: events behind a slow transaction
arrive when it commits, after later positions. That is simply their arrival order,
which event-time windows absorb (out-of-orderness, allowed lateness).

On SQLite one writer holds the database lock for the whole transaction and
positions are assigned under it, so they commit in order; a gap can only be a
position that never existed, and is dropped at once.

Reading a project's streams still reads every position (to tell a gap from another
project's event) but fetches payloads only for the project's own events.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Case, F, Func, JSONField, Q, Value, When

from continust.core.database import on_postgresql
from continust.models import Event, Stream

__all__ = ["LogCursor", "LogEvent", "LogSource", "Poll", "position_ranges"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
NO_HORIZON = -1


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of the log as a pipeline sees it; ``ts`` is event time in ms since 1970."""

    position: int
    stream: str
    type: str
    ts: int
    payload: Any


@dataclass(slots=True)
class LogCursor:
    """How far a source has read: the highest position, and the gaps below it.

    ``gaps`` holds ``[low, high, xmax]`` ranges of positions not seen yet; ``horizon``
    is the ``xmin`` of the snapshot taken after the last poll (not stored: after a
    restart the first poll only re-reads the gaps).
    """

    position: int = 0
    gaps: list[list[int]] = field(default_factory=list)
    horizon: int = NO_HORIZON

    @classmethod
    def from_json(cls, data: Any) -> LogCursor:
        if not data:
            return cls()
        return cls(int(data["position"]), [[int(x) for x in gap] for gap in data.get("gaps", [])])

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "gaps": [list(gap) for gap in self.gaps]}

    @property
    def missing(self) -> int:
        """How many positions below the cursor are still awaited."""
        return sum(high - low + 1 for low, high, _ in self.gaps)


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll of a source found."""

    events: list[LogEvent]
    cursor: dict[str, Any]
    rows: int
    caught_up: bool
    moved: bool
    gaps: int


def position_ranges(positions: Iterable[int]) -> list[list[int]]:
    """Compress ascending-or-not positions into sorted ``[low, high]`` ranges."""
    ranges: list[list[int]] = []
    for p in sorted(positions):
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    return ranges


def _range_filter(ranges: Sequence[Sequence[int]]) -> Q:
    where = Q()
    for low, high, *_ in ranges:
        where |= Q(position=low) if low == high else Q(position__gte=low, position__lte=high)
    return where


class _EpochMillis(Func):
    """A timestamp as whole milliseconds since 1970, floored, computed by PostgreSQL."""

    template = "FLOOR(EXTRACT(EPOCH FROM %(expressions)s) * 1000)::bigint"
    output_field = BigIntegerField()


def _snapshot() -> tuple[int, int]:
    """(xmin, xmax) of a snapshot taken now; +infinity-like on SQLite (one writer at a time)."""
    if not on_postgresql():
        return 2**62, 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint "
            "FROM pg_current_snapshot() AS s"
        )
        xmin, xmax = cursor.fetchone()
    return int(xmin), int(xmax)


class LogSource:
    """Events of a project's streams (all, or those named) in arrival order.

    ``streams`` and ``types`` narrow what is delivered; every position is still
    read, so the cursor and its gaps cover the whole log. ``payloads=False`` leaves
    payloads unread (``None``) for pipelines that never look at them.
    """

    name = "log"

    def __init__(
        self,
        streams: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        *,
        payloads: bool = True,
    ) -> None:
        self.streams = frozenset(streams) if streams else None
        self.types = frozenset(types) if types else None
        self.payloads = payloads
        self.project_id: int | None = None
        self.cursor = LogCursor()
        self._names: dict[int, str] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "streams": sorted(self.streams) if self.streams else "all",
            "types": sorted(self.types) if self.types else "all",
        }

    def bind(self, project_id: int, cursor: Any = None) -> None:
        """Read the project's log from ``cursor`` (a ``LogCursor.to_json()``; None: the start)."""
        self.project_id = project_id
        self.cursor = LogCursor.from_json(cursor)

    # ------------------------------------------------------------------ reading

    def _rows(self, where: Q, limit: int | None = None) -> list[tuple[Any, ...]]:
        ours = Q(stream__project_id=self.project_id)
        # A bare NULL, not JSON null: nothing to decode for other projects' events.
        payload: Any = Value(None, output_field=BigIntegerField())
        if self.payloads:
            payload = Case(
                When(ours, then=F("payload")), default=Value(None), output_field=JSONField()
            )
        # PostgreSQL computes the milliseconds: loading timestamps costs more than the read.
        moment: Any = _EpochMillis("timestamp") if on_postgresql() else F("timestamp")
        rows = (
            Event.objects.filter(where)
            .order_by("position")
            .annotate(
                _ours=Case(When(ours, then=Value(True)), default=Value(False)),
                _payload=payload,
                _moment=moment,
            )
            .values_list("position", "_ours", "stream_id", "type", "_moment", "_payload")
        )
        return list(rows[:limit] if limit is not None else rows)

    def _events(self, rows: Iterable[tuple[Any, ...]]) -> list[LogEvent]:
        out = []
        names = self._names
        streams, types = self.streams, self.types
        for position, ours, stream_id, type_, moment, payload in rows:
            if not ours:
                continue
            name = names.get(stream_id)
            if name is None:
                assert self.project_id is not None
                names.update(
                    Stream.objects.filter(project_id=self.project_id).values_list("id", "name")
                )
                name = names[stream_id]
            if streams is not None and name not in streams:
                continue
            if types is not None and type_ not in types:
                continue
            if isinstance(moment, datetime):
                moment = (moment - EPOCH) // MILLISECOND
            out.append(LogEvent(position, name, type_, moment, payload))
        return out

    def poll(self, limit: int) -> Poll:
        """Read the gaps, then up to ``limit`` positions past the cursor; advance the cursor."""
        cursor = self.cursor
        before = (cursor.position, len(cursor.gaps), cursor.missing)
        found: list[tuple[Any, ...]] = []
        upto: int | None = None  # a gap read that hit the limit stopped here
        if cursor.gaps:
            found = self._rows(_range_filter(cursor.gaps), limit)
            if len(found) >= limit:
                upto = found[-1][0]
            self._fill_gaps([row[0] for row in found], upto)
        fresh = self._rows(Q(position__gt=cursor.position), limit) if upto is None else []
        xmin, xmax = _snapshot()
        if fresh:
            seen = [row[0] for row in fresh]
            self._open_gaps(cursor.position, seen, xmax)
            cursor.position = seen[-1]
        cursor.horizon = xmin
        events = self._events(found) + self._events(fresh)
        after = (cursor.position, len(cursor.gaps), cursor.missing)
        return Poll(
            events=events,
            cursor=cursor.to_json(),
            rows=len(found) + len(fresh),
            caught_up=upto is None and len(fresh) < limit,
            moved=after != before,
            gaps=cursor.missing,
        )

    def fetch(self, ranges: Sequence[Sequence[int]]) -> list[LogEvent]:
        """Read again the events at these position ranges (a checkpointed epoch), in order."""
        if not ranges:
            return []
        by_position = {row[0]: row for row in self._rows(_range_filter(ranges))}
        order = [p for low, high in ranges for p in range(low, high + 1)]
        return self._events(by_position[p] for p in order if p in by_position)

    # ------------------------------------------------------------------ gaps

    def _fill_gaps(self, positions: Sequence[int], upto: int | None) -> None:
        """Take found positions out of the gaps; drop gaps whose writers have all ended.

        Only the gaps up to ``upto`` were read in full when the read hit its limit;
        the rest stay as they are, for the next poll.
        """
        present = sorted(positions)
        horizon = self.cursor.horizon
        kept: list[list[int]] = []
        for low, high, xmax in self.cursor.gaps:
            if upto is not None and high > upto:
                if low > upto:
                    kept.append([low, high, xmax])
                    continue
                kept.append([upto + 1, high, xmax])
                high = upto
            if horizon != NO_HORIZON and horizon >= xmax:
                continue  # every writer that could fill it had ended before this read
            start = low
            for p in present[bisect.bisect_left(present, low) : bisect.bisect_right(present, high)]:
                if start < p:
                    kept.append([start, p - 1, xmax])
                start = p + 1
            if start <= high:
                kept.append([start, high, xmax])
        self.cursor.gaps = sorted(kept)

    def _open_gaps(self, after: int, seen: Sequence[int], xmax: int) -> None:
        expected = after + 1
        for p in seen:
            if p > expected:
                self.cursor.gaps.append([expected, p - 1, xmax])
            expected = p + 1

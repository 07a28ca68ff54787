"""Time travel: where a branch stood, and so its state, as of a moment or a log position.

A branch's head moves by recorded moves (append, fork, merge, import, replay, promote),
each written in the transaction that made its versions. The head **as of** a moment is
the head the last such move left, counting only the moves the moment had seen. Which
moves it had seen depends on the clock asked for:

- **recorded time** (``Clock.RECORDED``, the default): when the log recorded the move,
  which is when its versions were appended (the version's ``created_at``). This is the
  clock of "what did continust answer at 12:00".
- **event time** (``Clock.EVENT``): the timestamp of the event that made the move's new
  head, as the writer gave it. This is the clock of "what had happened by 12:00"; a
  writer that back-dates an event moves the branch back in event time too (the newest
  move whose head's event is at or before the moment wins).
- **a log position** (``T.P``, as ``continust.read.project_log`` writes them): the moves
  whose new head's event is at or before that place in the project's log.

A fork writes no event: in event time and by log position a forked branch stands at its
fork point from that version's event on.

``project_as_of`` answers for every stream of a project at one log position, **causally
consistent**: an event whose cause (directly or through its causes) comes after the
position is not included, and neither is anything after it in its stream. On SQLite the
log's order is commit order, so causes always come first; on PostgreSQL a transaction
that began writing before its cause committed orders before that cause (log order is by
transaction), and the cut below takes such an effect out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import connection

from continust.core.database import on_postgresql, snapshot
from continust.core.errors import NotFound
from continust.models import Branch, BranchMove, Event, Project, Stream, Version
from continust.read.project_log import LogPosition


class Clock(StrEnum):
    """Which time an ``as of`` moment is on."""

    RECORDED = "recorded"
    EVENT = "event"


@dataclass(frozen=True)
class AsOf:
    """A point to travel to: a moment on a clock, or a log position (exactly one)."""

    moment: datetime | None = None
    clock: Clock = Clock.RECORDED
    position: LogPosition | None = None

    def __post_init__(self) -> None:
        if (self.moment is None) == (self.position is None):
            raise ValueError("as of needs exactly one of a moment and a log position")

    def describe(self) -> str:
        if self.position is not None:
            return f"log position {self.position}"
        assert self.moment is not None
        return f"{self.clock.value} time {self.moment.isoformat()}"


def head_as_of(stream: Stream, branch: str, when: AsOf) -> Version | None:
    """Return the version ``branch`` of ``stream`` pointed at as of ``when``; None when the
    branch had no head yet then. NotFound when the stream has no such branch at all."""
    found = Branch.objects.filter(stream=stream, name=branch).first()
    if found is None:
        raise NotFound(f"stream {stream.name!r} has no branch {branch!r}")
    move = _moves_seen(BranchMove.objects.filter(branch=found), when).order_by("-id").first()
    if move is None:
        return None
    return Version.objects.select_related("event", "stream").get(pk=move.new_head_id)


def head_now(stream: Stream, branch: str) -> Version:
    """Return the version ``branch`` of ``stream`` points at now."""
    found = Branch.objects.filter(stream=stream, name=branch).first()
    if found is None:
        raise NotFound(f"stream {stream.name!r} has no branch {branch!r}")
    return Version.objects.select_related("event", "stream").get(pk=found.head_id)


def _moves_seen(moves: Any, when: AsOf) -> Any:
    if when.position is not None:
        return moves.extra(
            where=[_HEAD_AT_OR_BEFORE + _at_or_before() + ")"],
            params=_position_params(when.position),
        )
    if when.clock is Clock.EVENT:
        return moves.filter(new_head__event__timestamp__lte=when.moment)
    return moves.filter(at__lte=when.moment)


_HEAD_AT_OR_BEFORE = (
    f"EXISTS (SELECT 1 FROM {Version._meta.db_table} v JOIN {Event._meta.db_table} e"
    f" ON e.position = v.event_id"
    f" WHERE v.id = {BranchMove._meta.db_table}.new_head_id AND "
)


def _at_or_before() -> str:
    """SQL: event ``e`` is at or before a log position (two parameters)."""
    if on_postgresql():
        return "(e.tx, e.position) <= (%s::text::xid8, %s)"
    return "0 <= %s AND e.position <= %s"


def _position_params(at: LogPosition) -> list[Any]:
    return [str(at.tx) if on_postgresql() else at.tx, at.position]


@dataclass
class StreamAsOf:
    """One stream's branch head as of a log position (None: no version yet then)."""

    stream: Stream
    version: Version | None
    # The last log position of this stream that is included (causes cut it earlier).
    bound: LogPosition


def project_as_of(
    project: Project,
    at: LogPosition,
    *,
    branch: str = "main",
    streams: Iterable[Stream] | None = None,
) -> list[StreamAsOf]:
    """Return every stream's ``branch`` head as of log position ``at`` (or only those of
    ``streams``), causally consistent: nothing caused by an event after ``at`` is
    included. Streams without that branch are left out."""
    with snapshot():
        bounds = causal_bounds(project, at)
        chosen = (
            list(streams)
            if streams is not None
            else list(Stream.objects.filter(project=project).order_by("name"))
        )
        answer = []
        for stream in chosen:
            bound = bounds.get(stream.pk, at)
            try:
                version = head_as_of(stream, branch, AsOf(position=bound))
            except NotFound:
                continue
            answer.append(StreamAsOf(stream, version, bound))
        return answer


def causal_bounds(project: Project, at: LogPosition) -> dict[int, LogPosition]:
    """Per stream, the last log position included as of ``at`` when nothing caused after it
    may be: an effect whose cause is not included cuts its stream just before it, and the
    cut may exclude the cause of another effect, until nothing changes. Streams not named
    keep ``at``."""
    pairs = _causal_pairs(project, at)
    bounds: dict[int, LogPosition] = {}
    changed = True
    while changed:
        changed = False
        for effect_stream, effect, cause_stream, cause in pairs:
            if effect > bounds.get(effect_stream, at):
                continue  # already cut before it
            if cause <= bounds.get(cause_stream, at):
                continue
            bounds[effect_stream] = LogPosition(effect.tx, effect.position - 1)
            changed = True
    return bounds


def _causal_pairs(
    project: Project, at: LogPosition
) -> list[tuple[int, LogPosition, int, LogPosition]]:
    """(effect's stream, effect, cause's stream, cause) for every event at or before ``at``
    with a cause, in log order."""
    tx = "e.tx::text::bigint" if on_postgresql() else "0"
    cause_tx = "c.tx::text::bigint" if on_postgresql() else "0"
    within = _at_or_before()
    table = Event._meta.db_table
    sql = (
        f"SELECT e.stream_id, {tx}, e.position, c.stream_id, {cause_tx}, c.position"
        f" FROM {table} e JOIN {table} c ON c.project_id = e.project_id AND c.id = e.causation_id"
        f" WHERE e.project_id = %s AND e.causation_id IS NOT NULL AND {within}"
        f" ORDER BY 2, 3"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, *_position_params(at)])
        rows = cursor.fetchall()
    return [
        (int(r[0]), LogPosition(int(r[1]), int(r[2])), int(r[3]), LogPosition(int(r[4]), int(r[5])))
        for r in rows
    ]

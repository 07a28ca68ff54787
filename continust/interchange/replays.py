"""JSON Lines for a stream's finished replays: the history the replays list shows.

A ``replay`` line carries one finished replay (done, failed or cancelled) of the
stream: its id, its request (range as refs, filters, reducer version, upcasting,
who asked and when), its outcome (status, counts, progress times, shadow head as a
ref, error) and whether and by whom it was promoted or discarded. A stream's replay
lines come last, after its branch lines, in the order the replays were started.

A replay keeps its id: its shadow branch is ``replay/<id>``, a name its versions and
branch moves carry (and their hashes cover), so the id is part of what the file
says. An import into a database where another replay has that id records the shadow
versions and branch as any others and skips the replay's row, saying so.

Not carried: a replay still waiting or running (a job of the exporting database; the
versions it has written so far are), and each replay's claim (fence, lease, worker,
attempts), which is operational state of a worker, never shown as history.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from django.core.management.color import no_style
from django.db import connection

from continust.core.errors import InvalidEvent
from continust.log import canonical
from continust.models import Branch, Replay, ReplayStatus, Stream, Version

KIND: Final = "replay"

FINISHED: Final = (ReplayStatus.DONE, ReplayStatus.FAILED, ReplayStatus.CANCELLED)

SKIPPED_REPLAY: Final = "replays already recorded"
SKIPPED_TAKEN: Final = (
    "replays whose id another replay of this database has (their shadow versions and "
    "branch are imported; the replay's row is not)"
)

# The fields a line carries as they are: plain values.
_PLAIN: Final = (
    "branch",
    "skip_types",
    "skip_events",
    "reducer_version",
    "upcast_to",
    "actor",
    "status",
    "total",
    "done",
    "written",
    "cursor",
    "cancel_requested",
    "resumed_done",
    "error",
    "promoted_by",
    "discarded_by",
)
_TIMES: Final = (
    "until",
    "created_at",
    "started_at",
    "resumed_at",
    "progress_at",
    "finished_at",
    "promoted_at",
    "discarded_at",
)
_REFS: Final = ("start", "end", "shadow_head")


def _plain(where: str, name: str, value: Any) -> Any:
    """Return a plain field's value, refused unless it has the field's type."""
    if name in ("skip_types", "skip_events"):
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    elif name == "upcast_to":
        ok = value is None or isinstance(value, dict)
    elif name == "cancel_requested":
        ok = isinstance(value, bool)
    elif name in ("reducer_version", "total", "done", "written", "resumed_done", "cursor"):
        ok = (value is None and name == "reducer_version") or (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (value >= 0 or name == "cursor")
        )
    else:  # text; the names and actors at most 200 characters, as their columns
        ok = isinstance(value, str) and (name == "error" or len(value) <= 200)
    if not ok:
        raise InvalidEvent(f"{where}: {name} cannot be {value!r}")
    return value


def _time(where: str, name: str, text: Any) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    if moment is None or moment.tzinfo is None:
        raise InvalidEvent(f"{where}: {name} is not a time with its zone: {text!r}")
    return moment


def replay_records(stream: Stream, ordinal: dict[int, int]) -> Iterator[dict[str, Any]]:
    """Yield the stream's finished replays as lines, oldest first."""
    for replay in Replay.objects.filter(stream=stream, status__in=FINISHED).order_by("id"):
        line: dict[str, Any] = {"kind": KIND, "stream": stream.name, "id": replay.pk}
        for ref in _REFS:
            vid = getattr(replay, f"{ref}_id")
            line[ref] = ordinal[vid] if vid is not None else None
        for name in _PLAIN:
            line[name] = getattr(replay, name)
        for name in _TIMES:
            value = getattr(replay, name)
            line[name] = canonical.timestamp_text(value) if value is not None else None
        line["error_event"] = str(replay.error_event) if replay.error_event else None
        yield line


def import_replay(
    stream: Stream, record: dict[str, Any], refs: dict[Any, Version], skip: Any
) -> bool:
    """Import one replay line; return whether it added a row (``skip(reason)`` counts one
    it did not add, and why)."""
    pk = record["id"]
    if not isinstance(pk, int) or isinstance(pk, bool) or pk < 1:
        raise InvalidEvent(f"a replay is named by its id, not {pk!r}")
    where = f"replay {pk}"
    if record["status"] not in FINISHED:
        raise InvalidEvent(
            f"{where}: only a finished replay is carried, not a {record['status']!r} one"
        )
    values: dict[str, Any] = {name: _plain(where, name, record[name]) for name in _PLAIN}
    for name in _TIMES:
        values[name] = _time(where, name, record[name])
    if values["created_at"] is None:
        raise InvalidEvent(f"{where} has no created_at")
    for ref in _REFS:
        given = record[ref]
        if given is None:
            if ref == "end":
                raise InvalidEvent(f"{where} has no end")
            values[ref] = None
            continue
        if not isinstance(given, int) or isinstance(given, bool) or given not in refs:
            raise InvalidEvent(f"{where} names version {given!r}, which the stream does not have")
        values[ref] = refs[given]
    values["error_event"] = uuid.UUID(record["error_event"]) if record["error_event"] else None
    shadow = f"replay/{pk}"
    head = values["shadow_head"]
    if head is not None:
        if head.branch != shadow:
            raise InvalidEvent(f"{where}: its shadow head is a version of {head.branch!r}")
        if not Branch.objects.filter(stream=stream, name=shadow).exists():
            raise InvalidEvent(f"{where}: the file has no branch {shadow} before it")
    existing = Replay.objects.filter(pk=pk).first()
    if existing is not None:
        if existing.stream_id != stream.pk:
            skip(SKIPPED_TAKEN)
            return False
        if any(
            getattr(existing, name) != value for name, value in values.items() if name not in _REFS
        ) or any(
            getattr(existing, f"{name}_id") != (values[name].pk if values[name] else None)
            for name in _REFS
        ):
            raise InvalidEvent(f"{where} differs from the one already recorded")
        skip(SKIPPED_REPLAY)
        return False
    Replay.objects.create(pk=pk, stream=stream, **values)
    # created_at is set on insert; the line's is the one the replay was started at.
    Replay.objects.filter(pk=pk).update(created_at=values["created_at"])
    # The id was given: the next replay's must come after it.
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Replay]):
            cursor.execute(statement)
    return True

"""JSON Lines export and import of a project's streams: an exact round trip.

A file holds, per stream, a ``stream`` line, its ``event`` lines in chain
order, its ``version`` lines in creation order, its ``move`` lines (each branch's
hash chain of moves, ``continust.interchange.moves``), its ``branch`` lines and its
finished ``replay`` lines (``continust.interchange.replays``). Import
recomputes every hash, state and digest and refuses a file that does not match
them, so an import is also a verification. Re-importing skips what is there: an
event by its position in the chain, a version by its position in the stream (both
checked against their hashes), and says so. Versions are never matched by digest: a
replay's shadow version has the digest of the version it replays and is still a
version of its own, so every version of the file becomes one of the stream.

Stream, version and branch lines carry the row's ``created_at`` (the times the API,
the explorer and as-of reads show), and an import gives the rows it makes those
times; a row already there keeps its own. A line without one (a file written before
they were carried) gets the import's time, as before; a ``created_at`` that is not a
time with its zone is refused, and with it the whole file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from continust.core.errors import ContinustError, InvalidEvent
from continust.graph.cache import forget, graph_for
from continust.graph.lineage import VersionGraph
from continust.graph.parents import parents_in_stream
from continust.interchange import compacted, moves, records, replays, times
from continust.log import canonical, statistics
from continust.log.folding import derive_state
from continust.log.projects import create_stream
from continust.log.store import Batch, NewEvent, load_state, lock_stream, move_branch
from continust.log.subjects import Revealer, check_subject_member
from continust.models import Branch, Event, Project, Stream, Version


def export_lines(
    project: Project, streams: Iterable[str] | None = None, *, reveal: bool = False
) -> Iterator[str]:
    """Yield the project's streams (all, or those named) as JSON Lines.

    Payloads are written as stored, personal values sealed, so the file imports and
    verifies exactly; ``reveal`` writes them as readers see them instead (plain, or
    ``[erased]``), a copy for people that no longer matches the events' hashes.
    """
    revealer = Revealer(project.pk) if reveal else None
    query = Stream.objects.filter(project=project).order_by("name")
    if streams is not None:
        query = query.filter(name__in=list(streams))
    exported: list[str] = []
    for stream in query:
        exported.append(stream.name)
        line = {
            "kind": "stream",
            "name": stream.name,
            "reducer": stream.reducer,
            "reducer_version": stream.reducer_version,
            "retention": stream.retention,
            "created_at": times.written(stream.created_at),
        }
        yield _line(line if stream.personal is None else {**line, "personal": stream.personal})
        for event in Event.objects.filter(stream=stream).order_by("seq").iterator(2000):
            yield _line(
                {
                    "kind": "event",
                    "stream": stream.name,
                    "id": str(event.id),
                    "seq": event.seq,
                    "type": event.type,
                    "timestamp": canonical.timestamp_text(event.timestamp),
                    "payload": event.payload
                    if revealer is None
                    else revealer.reveal(event.payload),
                    "causation": str(event.causation_id) if event.causation_id else None,
                    "correlation": str(event.correlation_id) if event.correlation_id else None,
                    "actor": event.actor,
                    "prev_hash": event.prev_hash,
                    "hash": event.hash,
                }
            )
        # A compacted stream's released runs and the states an import cannot fold.
        for record in compacted.retained_records(stream):
            yield _line(record)
        parents = parents_in_stream(stream.pk)
        # Versions are named by their order within the stream, not by database ids,
        # so a file exported again after an import is the same file.
        ordinal: dict[int, int] = {}
        for vid, event_id, key, branch, reducer, reducer_version, state_id, digest, at in (
            Version.objects.filter(stream=stream)
            .order_by("id")
            .values_list(
                "id",
                "event__id",
                "key",
                "branch",
                "reducer",
                "reducer_version",
                "state_id",
                "digest",
                "created_at",
            )
            .iterator(2000)
        ):
            ordinal[vid] = len(ordinal) + 1
            yield _line(
                {
                    "kind": "version",
                    "stream": stream.name,
                    "ref": ordinal[vid],
                    "event": str(event_id),
                    "parents": [ordinal[p] for p in parents.get(vid, [])],
                    "key": key,
                    "branch": branch,
                    "reducer": reducer,
                    "reducer_version": reducer_version,
                    "state_hash": state_id,
                    "digest": digest,
                    "created_at": times.written(at),
                }
            )
        for record in moves.move_records(stream, ordinal):
            yield _line(record)
        for name, head, created_at in (
            Branch.objects.filter(stream=stream)
            .order_by("name")
            .values_list("name", "head_id", "created_at")
        ):
            yield _line(
                {
                    "kind": "branch",
                    "stream": stream.name,
                    "name": name,
                    "head": ordinal[head],
                    "created_at": times.written(created_at),
                }
            )
        for record in replays.replay_records(stream, ordinal):
            yield _line(record)
    # Reviews, tags and audit records, once every stream they name is in.
    for record in records.project_records(project, exported):
        yield _line(record)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class ImportResult:
    """What an import added, per kind of line, and what it skipped and why."""

    streams: int = 0
    events: int = 0
    versions: int = 0
    moves: int = 0
    replays: int = 0
    skipped: int = 0
    why: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.why[reason] = self.why.get(reason, 0) + 1

    def summary(self) -> str:
        """One line: what was added, then what was skipped and why."""
        added = (
            f"{self.streams} streams, {self.events} events, {self.versions} versions, "
            f"{self.moves} branch moves, {self.replays} replays"
        )
        if not self.skipped:
            return f"{added}, nothing skipped"
        reasons = "; ".join(f"{count} {reason}" for reason, count in self.why.items())
        return f"{added}; {self.skipped} skipped: {reasons}"


SKIPPED_EVENT = "events already recorded (same position, same hash)"
SKIPPED_VERSION = "versions already recorded (same position, same digest)"


class _StreamImport:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.graph: VersionGraph[int] = graph_for(stream)
        self.refs: dict[Any, Version] = {}
        # The stream's versions in creation order: the file's refs are these positions.
        self.existing = list(Version.objects.filter(stream=stream).order_by("id"))
        self.retained = compacted.RetainedImport()
        self.moves = moves.MoveImport(stream)
        self.created = False


def import_lines(project: Project, lines: Iterable[str]) -> ImportResult:
    """Import JSON Lines into a project in one transaction; refuse the whole file on any error."""
    result = ImportResult()
    touched: list[Stream] = []
    links: list[compacted.RecordLink] = []
    try:
        with transaction.atomic():
            current: _StreamImport | None = None
            for number, text in enumerate(lines, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                    if not isinstance(record, dict):
                        raise InvalidEvent("a line must be a JSON object")
                    if current is not None and record.get("kind") in ("stream", *records.KINDS):
                        links += _finish_stream(current)
                    current = _import_record(project, record, current, result)
                    if current is not None and current.stream not in touched:
                        touched.append(current.stream)
                except (ContinustError, KeyError, TypeError, ValueError) as err:
                    raise InvalidEvent(f"line {number}: {err}") from err
            try:
                if current is not None:
                    links += _finish_stream(current)
                compacted.link_records(
                    project,
                    links,
                    with_audit=any(s.name == records.AUDIT_STREAM for s in touched),
                    skip=result.skip,
                )
            except (ContinustError, KeyError, TypeError, ValueError) as err:
                raise InvalidEvent(f"at the end of the file: {err}") from err
    except Exception:
        for stream in touched:
            forget(stream)
        raise
    statistics.refresh(result.events + result.versions)
    return result


def _import_record(
    project: Project,
    record: dict[str, Any],
    current: _StreamImport | None,
    result: ImportResult,
) -> _StreamImport | None:
    kind = record.get("kind")
    if kind == "stream":
        stream = Stream.objects.filter(project=project, name=record["name"]).first()
        created_at = times.read(
            f"stream {record['name']!r}", "created_at", record.get("created_at")
        )
        if stream is None:
            stream = create_stream(
                project,
                record["name"],
                reducer=record["reducer"],
                reducer_version=record["reducer_version"],
            )
            if isinstance(record.get("personal"), dict):
                stream.personal = {
                    "subject": check_subject_member(record["personal"].get("subject"))
                }
                stream.save(update_fields=["personal"])
            if created_at is not None:
                # created_at is set on insert; the line's is when the stream was made.
                Stream.objects.filter(pk=stream.pk).update(created_at=created_at)
                stream.created_at = created_at
            result.streams += 1
            opened = _StreamImport(lock_stream(stream))
            opened.created = True
            return opened
        return _StreamImport(lock_stream(stream))
    if kind in records.KINDS:
        records.import_record(project, record, result.skip)
        return None
    if current is None or record.get("stream") != current.stream.name:
        raise InvalidEvent(f"a {kind} line comes before its stream line")
    if kind == "event":
        _import_event(current, record, result)
    elif kind == "version":
        _import_version(current, record, result)
    elif kind in compacted.KINDS:
        current.retained.take(record)
    elif kind == moves.KIND:
        if not current.moves.take(record, current.refs, result.skip):
            return current
        result.moves += 1
    elif kind == "branch":
        _import_branch(current, record)
    elif kind == replays.KIND:
        if replays.import_replay(current.stream, record, current.refs, result.skip):
            result.replays += 1
    else:
        raise InvalidEvent(f"unknown line kind {kind!r}")
    return current


def _import_branch(current: _StreamImport, record: dict[str, Any]) -> None:
    name = record["name"]
    created_at = times.read(f"branch {name!r}", "created_at", record.get("created_at"))
    head = current.refs[record["head"]]
    branch = Branch.objects.filter(stream=current.stream, name=name).first()
    made = current.moves.made.get(name)
    if branch is not None and made is not None and created_at not in (None, made):
        raise InvalidEvent(
            f"branch {name!r}: its created_at is not the one its first move line gives"
        )
    if branch is None or branch.head_id != head.pk:
        if current.moves.seen:
            # The file's moves are the branch's history: they must end at its head.
            current.moves.check(name)
            raise InvalidEvent(f"branch {name!r}: its moves do not end at the head the line names")
        # A file written before moves were exported: one move says where it came from.
        move_branch(
            current.stream,
            name,
            head,
            reason="import",
            created_at=created_at if branch is None else None,
        )


def _import_event(current: _StreamImport, record: dict[str, Any], result: ImportResult) -> None:
    stream = current.stream
    if record["seq"] <= stream.event_count:
        existing = Event.objects.filter(stream=stream, seq=record["seq"]).first()
        if existing is None or existing.hash != record["hash"]:
            raise InvalidEvent(f"event #{record['seq']} differs from the one already recorded")
        result.skip(SKIPPED_EVENT)
        return
    clash = Event.objects.filter(project_id=stream.project_id, id=uuid.UUID(record["id"]))
    other = clash.select_related("stream").first()
    if other is not None:
        raise InvalidEvent(
            f"event {record['id']} is already recorded in stream {other.stream.name}; "
            "event ids are unique within a project"
        )
    if record["payload"] is None and record["hash"]:
        # Released by compaction: a released version must make it (checked at the end).
        compacted.import_bare_event(stream, record, current.retained)
        result.events += 1
        return
    if canonical.storable(record["payload"]) is not record["payload"]:
        # Its hash covers a value the database would give back changed (PostgreSQL
        # has no -0.0), so the chain would read back broken: refuse it whole.
        raise InvalidEvent(
            f"event #{record['seq']}'s payload holds a negative zero or a "
            "whole float of 1e16 or more, which no database gives back as "
            "its hash was computed"
        )
    new = NewEvent(
        type=record["type"],
        payload=record["payload"],
        id=uuid.UUID(record["id"]),
        timestamp=datetime.fromisoformat(record["timestamp"]),
        causation=uuid.UUID(record["causation"]) if record["causation"] else None,
        correlation=uuid.UUID(record["correlation"]) if record["correlation"] else None,
        actor=record["actor"],
    )
    batch = Batch(stream)
    event = batch.add_event(new)
    if event.seq != record["seq"] or event.hash != record["hash"]:
        raise InvalidEvent(f"event #{record['seq']} does not hash to the exported chain")
    batch.commit()
    result.events += 1


def _import_version(current: _StreamImport, record: dict[str, Any], result: ImportResult) -> None:
    ref = record["ref"]
    if not isinstance(ref, int) or isinstance(ref, bool) or ref < 1:
        raise InvalidEvent(f"a version's ref is its position in the stream, not {ref!r}")
    created_at = times.read(f"version {ref}", "created_at", record.get("created_at"))
    if ref <= len(current.existing):
        existing = current.existing[ref - 1]
        if existing.digest != record["digest"]:
            raise InvalidEvent(f"version {ref} differs from the one already recorded")
        current.refs[ref] = existing
        result.skip(SKIPPED_VERSION)
        return
    stream = current.stream
    event = Event.objects.get(stream=stream, id=uuid.UUID(record["event"]))
    parents = [current.refs[ref] for ref in record["parents"]]
    # A released version, or a kept one after released ones: its state is given, or gone.
    given, state = current.retained.given_state(ref, record["state_hash"])
    if not given and event.payload is None:
        raise InvalidEvent(compacted.compacted_error(stream, event.seq))
    if not given:
        state = derive_state(
            current.graph,
            load_state,
            reducer=record["reducer"],
            reducer_version=record["reducer_version"],
            parents=[p.pk for p in parents],
            event_id=str(event.id),
            type=event.type,
            payload=event.payload,
            actor=event.actor,
        )
    batch = Batch(stream)
    planned = batch.add_version(
        event,
        parents,
        state,
        reducer=record["reducer"],
        reducer_version=record["reducer_version"],
        branch=record["branch"],
        key=record["key"],
        state_hash=record["state_hash"] if given else None,
        store_state=not (given and state is None),
    )
    if planned.digest != record["digest"]:
        raise InvalidEvent(f"version {record['ref']} does not match its exported digest")
    (version,) = batch.commit(created_at=created_at)
    current.graph.add(version.pk, [p.pk for p in parents], version.generation)
    current.refs[ref] = version
    current.existing.append(version)
    result.versions += 1


def _finish_stream(current: _StreamImport) -> list[compacted.RecordLink]:
    """Once a stream's lines are read: its policy, released runs and compactions."""
    current.moves.finish()
    compacted.apply_policy(current.stream, current.retained, created=current.created)
    links = compacted.finish(current.stream, current.retained, current.refs)
    current.retained = compacted.RetainedImport()
    return links

"""Audit reports: who changed what when, who reviewed and approved it, and the proof.

A report covers a review (its range of versions) or a time range of a project. Its
integrity proof is the result of ``verify`` on the streams it covers and, per stream, a
pin: the number of events and versions the report saw and the hash of the last event,
the chain head. The pinned export (``pinned_export``) is the JSON Lines export of
exactly those events and versions; it never changes, since events and versions never
do, so its SHA-256 is part of the report. A third party imports it into an empty
database (``manage.py import_jsonl``, which recomputes every hash) and runs
``manage.py verify``: the chain heads it prints must be the report's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from django.db.models import Count
from django.utils import timezone

from continust.audit.integrity import verify
from continust.audit.reviews import (
    CHECKED,
    COMMENTED,
    CORRECTED,
    DECIDED,
    OPENED,
    ReviewLog,
    range_ids,
    review_log,
)
from continust.audit.trail import (
    audit_stream,
)
from continust.core.database import snapshot
from continust.core.errors import InvalidEvent, InvalidName, NotFound
from continust.core.parsing import parse_cursor
from continust.documents import diff as diffs
from continust.graph.cache import graph_for
from continust.interchange.jsonl import export_lines
from continust.log.canonical import GENESIS, timestamp_text
from continust.log.states import states_of
from continust.models import AuditRecord, Event, Project, ReleasedVersion, Review, Stream, Version

MAX_VERSIONS: Final = 2000

VERIFY_STEPS: Final = (
    "Check the export: sha256sum {file} must print {sha256}.",
    "Make an empty database: export CONTINUST_VAR_DIR=$(mktemp -d) DJANGO_DEBUG=1; "
    "python manage.py migrate",
    "python manage.py create_project {project}",
    "python manage.py import_jsonl {file} --project {project}  (recomputes every hash, "
    "state and digest, and refuses a file that does not match them)",
    "python manage.py verify --project {project} --json: ok must be true and each stream's "
    "head must equal the chain head this report states.",
)


@dataclass(frozen=True)
class Pin:
    """A stream's chain as a report saw it: its first events and versions, and its head."""

    stream_id: int
    name: str
    label: str
    events: int
    versions: int
    head: str

    @property
    def token(self) -> str:
        return f"{self.stream_id}.{self.events}.{self.versions}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.label,
            "events": self.events,
            "versions": self.versions,
            "head": self.head,
        }


def pin_streams(streams: Sequence[Stream]) -> list[Pin]:
    """Pin the streams' chains as they are now (one statement: one consistent snapshot)."""
    rows = (
        Stream.objects.filter(pk__in=[s.pk for s in streams])
        .annotate(version_total=Count("versions"))
        .select_related("project")
        .order_by("name")
    )
    return [
        Pin(s.pk, s.name, f"{s.project.slug}/{s.name}", s.event_count, s.version_total, s.last_hash)
        for s in rows
    ]


def parse_pins(project: Project, tokens: Sequence[str]) -> list[Pin]:
    """Read pins from their tokens (``stream.events.versions``) and check them."""
    pins = []
    for token in tokens:
        try:
            stream_id, events, versions = parse_cursor(token, 3)
        except InvalidName:
            raise InvalidEvent(f"{token[:40]!r} is not a pin (stream.events.versions)") from None
        stream = Stream.objects.filter(project=project, pk=stream_id).first()
        if stream is None:
            raise NotFound(f"project {project.slug} has no stream {stream_id}")
        total = Version.objects.filter(stream=stream).count()
        if not (0 <= events <= stream.event_count and 0 <= versions <= total):
            raise InvalidEvent(
                f"stream {stream.name} has {stream.event_count} events and "
                f"{total} versions; {token} asks for more"
            )
        head = (
            Event.objects.filter(stream=stream, seq=events).values_list("hash", flat=True).first()
            if events
            else GENESIS
        )
        pins.append(
            Pin(
                stream.pk,
                stream.name,
                f"{project.slug}/{stream.name}",
                events,
                versions,
                head or GENESIS,
            )
        )
    if len({p.stream_id for p in pins}) != len(pins):
        raise InvalidEvent("each stream is pinned once")
    return sorted(pins, key=lambda p: p.name)


def pinned_export(project: Project, pins: Sequence[Pin]) -> Iterator[str]:
    """Yield the JSON Lines export of exactly the pinned events and versions.

    Branch lines are left out: branches move, and a pinned export stays the same file.
    """
    by_name = {pin.name: pin for pin in pins}
    for line in export_lines(project, streams=list(by_name)):
        item = json.loads(line)
        kind = item["kind"]
        if kind not in ("stream", "event", "version"):
            continue  # branches move; released runs and reviews are not pinned
        pin = by_name[item["name"] if kind == "stream" else item["stream"]]
        if (
            kind == "branch"
            or (kind == "event" and item["seq"] > pin.events)
            or (kind == "version" and item["ref"] > pin.versions)
        ):
            continue
        yield line


def export_file_name(project: Project) -> str:
    """Name the pinned export file as reports refer to it."""
    return f"{project.slug}-audit-export.jsonl"


@dataclass(frozen=True)
class Integrity:
    """The proof a report carries: verify's result and the pinned chains and their export."""

    verified: dict[str, Any]
    pins: list[Pin]
    export_sha256: str
    export_bytes: int
    export_lines: int

    @property
    def ok(self) -> bool:
        return bool(self.verified["ok"])

    @property
    def pin_query(self) -> str:
        return "&".join(f"pin={pin.token}" for pin in self.pins)


def prove(project: Project, streams: Sequence[Stream]) -> Integrity:
    """Verify the streams, pin them and digest their pinned export."""
    pins = pin_streams(streams)
    report = verify(streams=list(streams))
    digest = hashlib.sha256()
    size = lines = 0
    for line in pinned_export(project, pins):
        data = line.encode("utf-8")
        digest.update(data)
        size += len(data)
        lines += 1
    return Integrity(report.as_dict(), pins, digest.hexdigest(), size, lines)


# -- what the report says --------------------------------------------------------------------


@dataclass
class ChangeRow:
    """A version in the report: its event and what it changed against its first parent."""

    version: Version
    changes: list[diffs.Change]
    cause: Event | None = None
    # Its state, or its parent's, was released by the stream's retention policy.
    released: bool = False


@dataclass
class AuditReport:
    """An audit report, ready to render as HTML or PDF, or to write as JSON or CSV."""

    project: Project
    title: str
    scope: dict[str, Any]
    generated_at: datetime
    generated_by: str
    rows: list[ChangeRow]
    truncated: bool
    reviews: list[ReviewLog]
    records: list[Event]  # other audit records: membership changes
    integrity: Integrity
    steps: list[str] = field(default_factory=list)

    @property
    def export_name(self) -> str:
        return export_file_name(self.project)

    def as_dict(self) -> dict[str, Any]:
        """Return the whole report as JSON-ready data."""
        return {
            "report": {
                "project": self.project.slug,
                "title": self.title,
                "scope": self.scope,
                "generated_at": timestamp_text(self.generated_at),
                "generated_by": self.generated_by,
                "truncated": self.truncated,
            },
            "changes": [_row_dict(row) for row in self.rows],
            "reviews": [_review_dict(log) for log in self.reviews],
            "records": [_event_dict(e) for e in self.records],
            "integrity": {
                "verify": self.integrity.verified,
                "chains": [pin.as_dict() for pin in self.integrity.pins],
                "export": {
                    "file": self.export_name,
                    "sha256": self.integrity.export_sha256,
                    "bytes": self.integrity.export_bytes,
                    "lines": self.integrity.export_lines,
                    "pins": [pin.token for pin in self.integrity.pins],
                },
                "how_to_verify": self.steps,
            },
        }

    def csv_text(self) -> str:
        """Return the report as CSV: one row per changed path, review record and chain."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in csv_rows(self):
            writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
        return out.getvalue()


CSV_COLUMNS: Final = (
    "kind",
    "time",
    "actor",
    "stream",
    "version",
    "event",
    "type",
    "causation",
    "path",
    "op",
    "old",
    "new",
    "review",
    "text",
)


def _json_text(value: Any) -> str:
    return "" if value is diffs.MISSING else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def csv_rows(report: AuditReport) -> Iterator[dict[str, Any]]:
    for row in report.rows:
        event = row.version.event
        base = {
            "kind": "change",
            "time": timestamp_text(event.timestamp),
            "actor": event.actor,
            "stream": row.version.stream.name,
            "version": row.version.pk,
            "event": str(event.id),
            "type": event.type,
            "causation": str(event.causation_id or ""),
        }
        if not row.changes:
            yield {**base, "text": "released by the retention policy"} if row.released else base
        for change in row.changes:
            yield {
                **base,
                "path": change.path,
                "op": change.op,
                "old": _json_text(change.old),
                "new": _json_text(change.new),
            }
    for log in report.reviews:
        for event in log.events:
            yield {
                **_event_dict(event),
                "kind": event.type,
                "review": log.review.pk,
                "stream": log.review.stream.name,
                "text": event_text(event),
                "path": (event.payload.get("target") or {}).get("path")
                or event.payload.get("path", ""),
            }
    for event in report.records:
        yield {**_event_dict(event), "kind": event.type, "text": event_text(event)}
    for pin in report.integrity.pins:
        yield {
            "kind": "chain",
            "stream": pin.label,
            "version": pin.versions,
            "event": pin.head,
            "text": f"{pin.events} events; verify ok: "
            f"{report.integrity.ok}; export sha256 {report.integrity.export_sha256}",
        }


def event_text(event: Event) -> str:
    payload = event.payload
    if event.type == DECIDED:
        return f"{payload.get('decision')}: {payload.get('note', '')}".rstrip(": ")
    if event.type in {COMMENTED, CORRECTED}:
        return str(payload.get("body", ""))
    if event.type == CHECKED:
        return "checked" if payload.get("checked") else "unchecked"
    if event.type == OPENED:
        return str(payload.get("title", ""))
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)


def _event_dict(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "seq": event.seq,
        "type": event.type,
        "time": timestamp_text(event.timestamp),
        "actor": event.actor,
        "causation": str(event.causation_id) if event.causation_id else None,
        "payload": event.payload,
        "hash": event.hash,
    }


def _row_dict(row: ChangeRow) -> dict[str, Any]:
    event = row.version.event
    return {
        "version": row.version.pk,
        "digest": row.version.digest,
        "stream": row.version.stream.name,
        "branch": row.version.branch,
        "event": {
            "id": str(event.id),
            "type": event.type,
            "actor": event.actor,
            "time": timestamp_text(event.timestamp),
            "hash": event.hash,
            "causation": str(event.causation_id) if event.causation_id else None,
        },
        "changes": [c.to_dict() for c in row.changes],
        "released": row.released,
    }


def _review_dict(log: ReviewLog) -> dict[str, Any]:
    review = log.review
    return {
        "id": review.pk,
        "title": review.title,
        "stream": review.stream.name,
        "base": review.base_id,
        "head": review.head_id,
        "branch": review.branch,
        "opened_by": review.opened_by,
        "opened_at": timestamp_text(review.opened_at),
        "status": log.status,
        "decisions": {actor: _event_dict(e) for actor, e in log.latest_decisions.items()},
        "events": [_event_dict(e) for e in log.events],
    }


# -- building reports --------------------------------------------------------------------


def _rows(versions: list[Version]) -> list[ChangeRow]:
    """Diff each version against its first parent, loading every state once."""
    first_parent: dict[int, int] = {}
    graphs = {v.stream_id: graph_for(v.stream) for v in versions}
    for version in versions:
        parents = graphs[version.stream_id].parents(version.pk)
        if parents:
            first_parent[version.pk] = parents[0]
    wanted = {v.pk for v in versions} | set(first_parent.values())
    released = set(
        ReleasedVersion.objects.filter(version_id__in=wanted).values_list("version_id", flat=True)
    )
    states = states_of(wanted - released)
    causes: dict[UUID | None, Event] = {
        e.id: e
        for e in Event.objects.filter(
            project_id__in={v.event.project_id for v in versions},
            id__in=[v.event.causation_id for v in versions if v.event.causation_id],
        )
    }
    rows = []
    for version in versions:
        parent = first_parent.get(version.pk)
        if version.pk in released or parent in released:
            rows.append(
                ChangeRow(version, [], causes.get(version.event.causation_id), released=True)
            )
            continue
        before = states[parent] if parent is not None else {}
        rows.append(
            ChangeRow(
                version,
                diffs.diff(before, states[version.pk]),
                causes.get(version.event.causation_id),
            )
        )
    return rows


def _steps(project: Project, file: str, sha256: str) -> list[str]:
    return [step.format(project=project.slug, file=file, sha256=sha256) for step in VERIFY_STEPS]


def review_report(review: Review, *, generated_by: str) -> AuditReport:
    """Build the audit report of a review: its range, its record and the proof."""
    with snapshot():
        stream = review.stream
        ids = range_ids(stream, review.base_id, review.head_id)
        truncated = len(ids) > MAX_VERSIONS
        versions = list(
            Version.objects.filter(pk__in=ids[:MAX_VERSIONS])
            .select_related("event", "stream")
            .order_by("id")
        )
        log = review_log(review)
        integrity = prove(review.project, [stream, audit_stream(review.project)])
    scope = {
        "kind": "review",
        "review": review.pk,
        "stream": stream.name,
        "base": review.base_id,
        "head": review.head_id,
        "branch": review.branch,
        "versions": len(ids),
    }
    report = AuditReport(
        review.project,
        f"Review {review.pk}: {review.title}",
        scope,
        timezone.now(),
        generated_by,
        _rows(versions),
        truncated,
        [log],
        [],
        integrity,
    )
    report.steps = _steps(review.project, report.export_name, integrity.export_sha256)
    return report


def range_report(
    project: Project,
    *,
    since: datetime | None,
    until: datetime | None,
    stream: Stream | None = None,
    generated_by: str,
) -> AuditReport:
    """Build the audit report of what happened to a project (or one stream) in a time range."""
    if since and until and since >= until:
        raise InvalidEvent("the range must end after it starts")
    with snapshot():
        audit = audit_stream(project)
        streams = (
            [stream]
            if stream is not None
            else list(Stream.objects.filter(project=project).exclude(pk=audit.pk).order_by("name"))
        )
        versions = _versions_in(streams, since, until)
        truncated = len(versions) > MAX_VERSIONS
        records = AuditRecord.objects.filter(project=project)
        events = Event.objects.filter(pk__in=records.values("event_id"))
        if since:
            events = events.filter(timestamp__gte=since)
        if until:
            events = events.filter(timestamp__lt=until)
        active = (
            Review.objects.filter(
                pk__in=records.filter(event__in=events, review__isnull=False).values("review_id"),
                stream__in=streams,
            )
            .select_related("stream", "opened_event")
            .order_by("id")
        )
        logs = [review_log(r) for r in active]
        others = list(events.filter(audit_record__review__isnull=True).order_by("seq"))
        integrity = prove(project, [*streams, audit])
    scope = {
        "kind": "range",
        "since": timestamp_text(since) if since else None,
        "until": timestamp_text(until) if until else None,
        "stream": stream.name if stream else None,
        "versions": len(versions),
    }
    what = stream.name if stream else project.name
    title = f"{what}: {_when(since, 'the beginning')} to {_when(until, 'now')}"
    report = AuditReport(
        project,
        title,
        scope,
        timezone.now(),
        generated_by,
        _rows(versions[:MAX_VERSIONS]),
        truncated,
        logs,
        others,
        integrity,
    )
    report.steps = _steps(project, report.export_name, integrity.export_sha256)
    return report


def _when(moment: datetime | None, otherwise: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else otherwise


def _versions_in(
    streams: list[Stream], since: datetime | None, until: datetime | None
) -> list[Version]:
    """The first version each event in the range made, oldest event first."""
    query = Version.objects.filter(stream__in=streams).select_related("event", "stream")
    if since:
        query = query.filter(event__timestamp__gte=since)
    if until:
        query = query.filter(event__timestamp__lt=until)
    seen: set[int] = set()
    versions = []
    for version in query.order_by("event__timestamp", "event__position", "id").iterator(500):
        if version.event_id not in seen:
            seen.add(version.event_id)
            versions.append(version)
            if len(versions) > MAX_VERSIONS:
                break
    return versions

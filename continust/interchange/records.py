"""JSON Lines for what indexes a project's audit stream: reviews, tags and audit records.

What a review says is events of the project's audit stream (``continust.audit.reviews``),
which an export carries as any stream's events. The rows that index them are carried by
lines of their own, after every stream, naming versions by their stream and position in
it and events by their id, never by database ids:

- ``review``: a review's stream, range (``base``, ``head``), branch, title, who opened it
  and when, and ``key``, the id of its ``review.opened`` event;
- ``tag``: a tag's stream, name, version, actor, ``created_at`` (the tag row's time, as
  ``tag --list`` and the API show it) and its ``tag.created`` event; a line without
  ``created_at`` (a file written before it was carried) gives the tag the import's time;
- ``audit_record``: an event of the audit stream that continust itself wrote, and the
  review it belongs to (an event with no such line is shown as foreign, as before).

They are written only when the audit stream is exported, and a review or tag only with
its stream. The import checks each against the events it names: the opening event's
payload must name the review's stream and the digests of its ends, a tag's event its
stream, name and version digest, and a review's record must be its opening or say it
belongs to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Final

from continust.core.errors import InvalidEvent
from continust.interchange import times
from continust.interchange.compacted import ordinals
from continust.log import canonical
from continust.models import AuditRecord, Event, Project, Review, Stream, Tag, Version

# The names below belong to continust.audit (a layer above this one): the audit stream
# (continust.audit.trail) and the event types of an opening and a tag.
AUDIT_STREAM: Final = "_audit"
OPENED: Final = "review.opened"
TAG_CREATED: Final = "tag.created"

KINDS: Final = ("review", "tag", "audit_record")

SKIPPED_REVIEW: Final = "reviews already recorded"
SKIPPED_TAG: Final = "tags already recorded"
SKIPPED_RECORD: Final = "audit records already recorded"


def project_records(project: Project, exported: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Yield the review, tag and audit record lines of the exported streams."""
    names = set(exported)
    if AUDIT_STREAM not in names:
        return
    positions: dict[int, dict[int, int]] = {}

    def ref(stream: Stream, version_id: int | None) -> int | None:
        if version_id is None:
            return None
        if stream.pk not in positions:
            positions[stream.pk] = ordinals(stream)
        return positions[stream.pk][version_id]

    reviews = (
        Review.objects.filter(project=project, stream__name__in=names)
        .select_related("stream", "opened_event")
        .order_by("id")
    )
    for review in reviews:
        yield {
            "kind": "review",
            "stream": review.stream.name,
            "key": str(review.opened_event.id),
            "base": ref(review.stream, review.base_id),
            "head": ref(review.stream, review.head_id),
            "branch": review.branch,
            "title": review.title,
            "opened_by": review.opened_by,
            "opened_at": canonical.timestamp_text(review.opened_at),
        }
    tags = (
        Tag.objects.filter(stream__project=project, stream__name__in=names)
        .select_related("stream", "event")
        .order_by("event__seq")
    )
    for tag in tags:
        yield {
            "kind": "tag",
            "stream": tag.stream.name,
            "name": tag.name,
            "version": ref(tag.stream, tag.version_id),
            "actor": tag.actor,
            "created_at": times.written(tag.created_at),
            "event": str(tag.event.id),
        }
    records = (
        AuditRecord.objects.filter(project=project, event__stream__name=AUDIT_STREAM)
        .select_related("event", "review__opened_event", "review__stream")
        .order_by("event__seq")
    )
    for record in records:
        owner = record.review
        if owner is not None and owner.stream.name not in names:
            continue
        yield {
            "kind": "audit_record",
            "event": str(record.event.id),
            "review": str(owner.opened_event.id) if owner is not None else None,
        }


def _stream(project: Project, name: Any) -> Stream:
    stream = Stream.objects.filter(project=project, name=name).first()
    if stream is None:
        raise InvalidEvent(f"the file has no stream {name!r} before this line")
    return stream


def _version(stream: Stream, ref: Any) -> Version:
    if not isinstance(ref, int) or isinstance(ref, bool) or ref < 1:
        raise InvalidEvent(f"a version is named by its position in the stream, not {ref!r}")
    found = Version.objects.filter(stream=stream).order_by("id")[ref - 1 : ref].first()
    if found is None:
        raise InvalidEvent(f"stream {stream.name} has no version {ref}")
    return found


def _audit_event(project: Project, key: Any, type_: str | None = None) -> Event:
    event = Event.objects.filter(
        project_id=project.pk, stream__name=AUDIT_STREAM, id=uuid.UUID(str(key))
    ).first()
    if event is None or (type_ is not None and event.type != type_):
        raise InvalidEvent(f"the audit stream has no {type_ or 'event'} {key}")
    return event


def _digest(ref: Any) -> Any:
    return ref.get("digest") if isinstance(ref, dict) else None


def import_record(project: Project, record: dict[str, Any], skip: Any) -> bool:
    """Import one review, tag or audit record line; return whether it added a row
    (``skip(reason)`` counts one already there)."""
    kind = record["kind"]
    if kind == "review":
        return _import_review(project, record, skip)
    if kind == "tag":
        return _import_tag(project, record, skip)
    return _import_audit_record(project, record, skip)


def _import_review(project: Project, record: dict[str, Any], skip: Any) -> bool:
    stream = _stream(project, record["stream"])
    head = _version(stream, record["head"])
    base = _version(stream, record["base"]) if record["base"] is not None else None
    where = f"review {record['key']}"
    opened_at = times.read(where, "opened_at", record["opened_at"])
    if opened_at is None:
        raise InvalidEvent(f"{where} has no opened_at")
    for name in ("opened_by", "branch", "title"):
        if not isinstance(record[name], str) or len(record[name]) > 200:
            raise InvalidEvent(f"{where}: {name} cannot be {record[name]!r}")
    opened = _audit_event(project, record["key"], OPENED)
    said = opened.payload if isinstance(opened.payload, dict) else {}
    if (
        said.get("stream") != stream.name
        or _digest(said.get("head")) != head.digest
        or _digest(said.get("base")) != (base.digest if base else None)
    ):
        raise InvalidEvent(
            f"review {record['key']}: its opening event names another range than the line"
        )
    existing = Review.objects.filter(opened_event=opened).first()
    if existing is not None:
        if existing.head_id != head.pk or existing.base_id != (base.pk if base else None):
            raise InvalidEvent(f"review {record['key']} differs from the one already recorded")
        skip(SKIPPED_REVIEW)
        return False
    Review.objects.create(
        project=project,
        stream=stream,
        base=base,
        head=head,
        branch=record["branch"],
        title=record["title"],
        opened_by=record["opened_by"],
        opened_at=opened_at,
        opened_event=opened,
    )
    return True


def _import_tag(project: Project, record: dict[str, Any], skip: Any) -> bool:
    stream = _stream(project, record["stream"])
    version = _version(stream, record["version"])
    where = f"tag {record['name']!r}"
    actor = record["actor"]
    if not isinstance(actor, str) or len(actor) > 200:
        raise InvalidEvent(f"{where}: actor cannot be {actor!r}")
    created_at = times.read(where, "created_at", record.get("created_at"))
    event = _audit_event(project, record["event"], TAG_CREATED)
    said = event.payload if isinstance(event.payload, dict) else {}
    if (
        said.get("stream") != stream.name
        or said.get("tag") != record["name"]
        or said.get("digest") != version.digest
    ):
        raise InvalidEvent(f"tag {record['name']!r}: its event names another tag or version")
    existing = Tag.objects.filter(stream=stream, name=record["name"]).first()
    if existing is not None:
        if existing.version_id != version.pk:
            raise InvalidEvent(f"tag {record['name']!r} is already on another version")
        skip(SKIPPED_TAG)
        return False
    tag = Tag(stream=stream, name=record["name"], version=version, actor=actor, event=event)
    if created_at is None:
        tag.save()
    else:
        # created_at is set on insert and a tag row is never updated: a raw save inserts
        # the row as given, with the line's time.
        tag.created_at = created_at
        tag.save_base(raw=True, force_insert=True)
    return True


def _import_audit_record(project: Project, record: dict[str, Any], skip: Any) -> bool:
    event = _audit_event(project, record["event"])
    review = None
    if record["review"] is not None:
        opened = _audit_event(project, record["review"], OPENED)
        review = Review.objects.filter(opened_event=opened).first()
        if review is None:
            raise InvalidEvent(f"an audit record names review {record['review']}, not in the file")
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.pk != opened.pk and payload.get("review") != str(opened.id):
            raise InvalidEvent(f"event {event.id} does not belong to review {opened.id}")
    existing = AuditRecord.objects.filter(event=event).first()
    if existing is not None:
        if existing.review_id != (review.pk if review else None):
            raise InvalidEvent(f"event {event.id} is already recorded for another review")
        skip(SKIPPED_RECORD)
        return False
    AuditRecord.objects.create(event=event, project=project, review=review)
    return True

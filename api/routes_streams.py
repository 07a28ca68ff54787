"""Operations on one stream: append events, read its events, versions and branches."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.access import stream_for, token_of, version_records
from api.errors import READ_ERRORS, REVISION_STATE_ERRORS, STATE_ERRORS, WRITE_ERRORS
from api.pagination import cursor_key, keyset_page
from api.schemas import (
    AppendIn,
    AppendOut,
    BranchPage,
    EventIn,
    EventPage,
    NamePageQuery,
    PageQuery,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
    VersionDetail,
    VersionIdPath,
    VersionPage,
)
from continust.core.parsing import parse_event_type
from continust.log.lookup import resolve_version
from continust.log.store import UNSET, NewEvent, append
from continust.log.subjects import Revealer
from continust.models import Branch, Event, Stream, Version
from continust.read.records import event_record, version_record
from continust.read.timeline import timeline_page
from continust.read.versions import read_version
from continust.schemas.registry import registry_of

router = Router(tags=["streams"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"


class RefQuery(Schema):
    ref: Ref


def _new_event(event: EventIn, default_actor: str) -> NewEvent:
    return NewEvent(
        type=parse_event_type(event.type),
        payload=event.payload,
        id=event.id,
        timestamp=event.timestamp,
        causation=event.causation,
        correlation=event.correlation,
        actor=event.actor or default_actor,
    )


@router.post(STREAM + "/events", response={200: AppendOut, 201: AppendOut, **WRITE_ERRORS})
def append_events(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: AppendIn
) -> Status[dict[str, Any]]:
    """Append one event or a batch to a branch: all of them, or none.

    Event ids are idempotency keys: a retried batch (same ids, types and payloads)
    answers 200 with the versions it made the first time and writes nothing; a new
    batch answers 201. `expected_head` makes the append conditional: 409 with
    `current_head` when the branch moved. The actor defaults to the token's user.
    Needs a write-scoped token and the editor role (403 otherwise).
    """
    stream = stream_for(request, slug, name, write=True)
    actor = token_of(request).user.get_username()
    events = [_new_event(e, actor) for e in body.events]
    expected = body.expected_head if "expected_head" in body.model_fields_set else UNSET
    result = append(stream, events, branch=body.branch, expected_head=expected)
    versions = result.versions
    if not result.created:  # the versions of the first delivery, loaded afresh
        versions = list(
            Version.objects.select_related("event")
            .filter(pk__in=[v.pk for v in versions])
            .order_by("event__seq")
        )
    return Status(
        201 if result.created else 200,
        {
            "created": result.created,
            "branch": versions[-1].branch,
            "head": versions[-1].pk,
            "versions": version_records(stream, versions, result.parents),
        },
    )


def _event_records(stream: Stream, events: list[Event]) -> list[dict[str, Any]]:
    revealer = Revealer(stream.project_id)
    for event in events:
        event.stream = stream
    registry = registry_of(stream.project)
    return [event_record(e, registry, revealer) for e in events]


@router.get(STREAM + "/events", response={200: EventPage, **READ_ERRORS})
def list_events(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[PageQuery]
) -> dict[str, Any]:
    """List the stream's events in log order (by `seq`), oldest first."""
    stream = stream_for(request, slug, name)
    rows, next_cursor = keyset_page(
        Event.objects.filter(stream=stream), "seq", page.after, page.limit, int
    )
    return {"items": _event_records(stream, rows), "next": next_cursor}


@router.get(STREAM + "/versions", response={200: VersionPage, **READ_ERRORS})
def list_versions(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[PageQuery]
) -> dict[str, Any]:
    """List the stream's versions in the order they were made (by id), oldest first."""
    stream = stream_for(request, slug, name)
    after = cursor_key(page.after, int) if page.after is not None else None
    read = timeline_page(
        stream,
        after=int(after) if after is not None else None,
        limit=page.limit,
        oldest_first=True,
        fold_released=False,
    )
    known = {row.version.pk: list(row.parents) for row in read.rows}
    return {
        "items": version_records(stream, [row.version for row in read.rows], known),
        "next": str(read.next) if read.next is not None else None,
    }


def _detail(stream: Stream, version: Version | int) -> dict[str, Any]:
    read = read_version(stream, version)
    state = read.require_state()
    return {
        **version_record(read.version, parents=list(read.parents)),
        "seq": read.seq,
        "event_hash": read.event_hash,
        "children": list(read.children),
        "heads": list(read.heads),
        "cause_count": read.cause_count,
        "consequence_count": read.consequence_count,
        "state": state,
    }


@router.get(STREAM + "/versions/{version_id}", response={200: VersionDetail, **STATE_ERRORS})
def get_version(
    request: HttpRequest, slug: SlugPath, name: StreamPath, version_id: VersionIdPath
) -> dict[str, Any]:
    """Return a version by id, with its state."""
    stream = stream_for(request, slug, name)
    return _detail(stream, version_id)


@router.get(STREAM + "/resolve", response={200: VersionDetail, **REVISION_STATE_ERRORS})
def resolve(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[RefQuery]
) -> dict[str, Any]:
    """Return the version a reference names (a branch, an external key or an id), with its
    state. A branch name wins over a key, and a key over an id."""
    stream = stream_for(request, slug, name)
    return _detail(stream, resolve_version(stream, query.ref))


@router.get(STREAM + "/branches", response={200: BranchPage, **READ_ERRORS})
def list_branches(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[NamePageQuery]
) -> dict[str, Any]:
    """List the stream's branches by name, with their heads."""
    stream = stream_for(request, slug, name)
    rows, next_cursor = keyset_page(
        Branch.objects.filter(stream=stream), "name", page.after, page.limit, str
    )
    items = [{"name": b.name, "head": b.head_id, "created_at": b.created_at} for b in rows]
    return {"items": items, "next": next_cursor}

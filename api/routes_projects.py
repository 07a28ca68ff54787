"""Operations on projects: their list, their streams, and events by id with their causation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from pydantic import Field

from api.access import project_for, token_of
from api.errors import READ_ERRORS, WRITE_ERRORS
from api.models import ApiToken
from api.pagination import keyset_page
from api.schemas import (
    CausationOut,
    EventIdPath,
    EventOut,
    NamePageQuery,
    ProjectPage,
    Schema,
    SlugPath,
    StreamIn,
    StreamOut,
    StreamPage,
)
from continust.core.errors import InvalidEvent, NotFound
from continust.graph.causation import causes, consequences, flatten
from continust.log.lookup import get_event
from continust.log.projects import create_stream
from continust.models import Membership, Stream
from continust.read.records import event_record
from continust.schemas.registry import registry_of

router = Router(tags=["projects"])

PROJECT = "/projects/{slug:slug}"


class StreamExists(Exception):
    """A stream name already taken in the project."""


class CausationQuery(Schema):
    limit: int = Field(
        100, ge=1, le=200, description="At most this many causes and this many consequences."
    )


def _stream_out(stream: Stream) -> dict[str, Any]:
    return {
        "name": stream.name,
        "reducer": stream.reducer,
        "reducer_version": stream.reducer_version,
        "retention": stream.retention,
        "event_count": stream.event_count,
        "created_at": stream.created_at,
    }


@router.get("/projects", response={200: ProjectPage, **READ_ERRORS})
def list_projects(request: HttpRequest, page: Query[NamePageQuery]) -> dict[str, Any]:
    """List the projects this token may see, with the user's role in each."""
    token = token_of(request)
    memberships = Membership.objects.select_related("project").filter(
        user_id=token.user_id,
        project__in=ApiToken.projects.through.objects.filter(apitoken_id=token.pk).values(
            "project_id"
        ),
    )
    rows, next_cursor = keyset_page(
        memberships,
        "project__slug",
        page.after,
        page.limit,
        str,
        value=lambda m: m.project.slug,
    )
    items = [{"slug": m.project.slug, "name": m.project.name, "role": m.role} for m in rows]
    return {"items": items, "next": next_cursor}


@router.get(PROJECT + "/streams", response={200: StreamPage, **READ_ERRORS})
def list_streams(
    request: HttpRequest, slug: SlugPath, page: Query[NamePageQuery]
) -> dict[str, Any]:
    """List the project's streams by name."""
    project = project_for(request, slug)
    rows, next_cursor = keyset_page(
        Stream.objects.filter(project=project), "name", page.after, page.limit, str
    )
    return {"items": [_stream_out(s) for s in rows], "next": next_cursor}


@router.post(PROJECT + "/streams", response={201: StreamOut, **WRITE_ERRORS})
def add_stream(request: HttpRequest, slug: SlugPath, body: StreamIn) -> Status[dict[str, Any]]:
    """Create a stream folded by a registered reducer (needs write scope and the editor role).

    409 when the name is taken; 422 for an unknown reducer.
    """
    project = project_for(request, slug, write=True)
    if Stream.objects.filter(project=project, name=body.name).exists():
        raise StreamExists(f"project {project.slug} already has a stream {body.name!r}")
    try:
        stream = create_stream(
            project, body.name, reducer=body.reducer, reducer_version=body.reducer_version
        )
    except NotFound as err:  # the only thing left to miss: the reducer
        raise InvalidEvent(str(err)) from err
    return Status(201, _stream_out(stream))


@router.get(PROJECT + "/events/{uuid:event_id}", response={200: EventOut, **READ_ERRORS})
def get_one_event(request: HttpRequest, slug: SlugPath, event_id: EventIdPath) -> dict[str, Any]:
    """Return an event of the project by its id."""
    project = project_for(request, slug)
    return event_record(get_event(project, event_id), registry_of(project))


@router.get(
    PROJECT + "/events/{uuid:event_id}/causation", response={200: CausationOut, **READ_ERRORS}
)
def causation(
    request: HttpRequest, slug: SlugPath, event_id: EventIdPath, query: Query[CausationQuery]
) -> dict[str, Any]:
    """Explain an event: the chain of its causes and the events it caused, bounded."""
    project = project_for(request, slug)
    event = get_event(project, event_id)
    limit = query.limit
    chain = causes(event, limit=limit + 1)
    caused = flatten(consequences(event, limit=limit + 1))[1:]  # the event itself is first
    truncated = len(chain) > limit or len(caused) > limit
    registry = registry_of(project)
    return {
        "event": event_record(event, registry),
        "causes": [event_record(e, registry) for e in chain[:limit]],
        "consequences": [
            {"depth": depth, "cause": str(e.causation_id), "event": event_record(e, registry)}
            for depth, e in caused[:limit]
        ],
        "truncated": truncated,
    }

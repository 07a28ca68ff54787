"""Replays over HTTP: start one, follow its progress, cancel, promote or discard it.

A replay re-folds a range of a stream into a shadow branch ``replay/<id>`` on a Celery
worker (``continust.replays.replay``). Reading needs membership; starting, cancelling
and promoting need a write-scoped token and the editor role, discarding the admin
role, as on the explorer's *Replays* page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict, Field, field_validator

from api.access import stream_for, token_of
from api.errors import READ_ERRORS, WRITE_ERRORS
from api.pagination import cursor_key
from api.schemas import (
    NON_BLANK,
    TIMESTAMP_PATTERN,
    Error,
    PageQuery,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
    StrictSchema,
    _whole_number,
    timestamp_in_range,
)
from continust.core.errors import NotFound
from continust.core.parsing import BIGINT_MAX
from continust.models import Replay, Role, Stream
from continust.replays import replay as replays

router = Router(tags=["replays"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"
ReplayIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A replay's id.")]
REPLAY_ERRORS: dict[int, type] = {**WRITE_ERRORS, 410: Error}
REPLAY_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "stream": "pricing",
    "status": "running",
    "label": "running",
    "percent": 40,
    "start": None,
    "end": 14,
    "branch": "main",
    "shadow_branch": "replay/7",
    "shadow_head": 31,
    "skip_types": ["tier.removed"],
    "skip_events": [],
    "until": None,
    "reducer_version": None,
    "upcast_to": None,
    "done": 4,
    "total": 10,
    "written": 4,
    "rate": 950.0,
    "error": None,
    "error_event": None,
    "promoted": False,
    "discarded": False,
    "actor": "alice",
}


class ReplayIn(StrictSchema):
    """What to replay: the versions `to` reaches and `from` does not, as `git rev-list`."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"to": "main", "from": "root", "skip_types": ["tier.removed"]}]
        },
    )

    to: Ref = Field(description="The end: usually a branch name, which a promote then moves.")
    start: Ref | None = Field(
        None,
        alias="from",
        description="The version to start after; `root` or left out: from the first version.",
    )
    skip_types: list[Annotated[str, Field(min_length=1, max_length=200, pattern=NON_BLANK)]] = (
        Field(default_factory=list, max_length=100, description="Event types left out.")
    )
    skip_events: list[UUID] = Field(
        default_factory=list, max_length=1000, description="Event ids left out."
    )
    until: datetime | None = Field(
        None,
        description="Leave out events after this moment (RFC 3339 with an offset).",
        json_schema_extra={"pattern": TIMESTAMP_PATTERN},
    )
    reducer_version: int | None = Field(
        None, ge=1, le=2_147_483_647, description="Fold with this version of the reducer."
    )
    upcast: bool = Field(
        False,
        description="Fold each event in its type's newest registered shape (the project's "
        "upcasters run), to diff against the original before promoting. 422 when no type "
        "of the project was evolved past version 1.",
    )

    _whole = field_validator("reducer_version", mode="before")(_whole_number)

    _in_range = field_validator("until")(timestamp_in_range)


class ReplayOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [REPLAY_EXAMPLE]})

    id: int
    stream: str
    status: Literal["waiting", "running", "done", "failed", "cancelled"]
    label: str = Field(description="The progress in words, as the explorer shows it.")
    percent: int
    start: int | None
    end: int
    branch: str = Field(description="The branch a promote moves; empty when none.")
    shadow_branch: str
    shadow_head: int | None
    skip_types: list[str]
    skip_events: list[str]
    until: str | None
    reducer_version: int | None
    upcast_to: dict[str, int] | None = Field(
        description="With upcasting: the version each event type was read in; else null."
    )
    done: int
    total: int
    written: int
    rate: float | None = Field(description="Events per second since the run (re)started.")
    error: str | None
    error_event: str | None
    promoted: bool
    discarded: bool
    actor: str


class ReplayPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [REPLAY_EXAMPLE], "next": None}]}
    )

    items: list[ReplayOut]
    next: str | None


# A replay that wrote all it had to: what promote and discard answer about.
FINISHED_REPLAY_EXAMPLE: dict[str, Any] = {
    **REPLAY_EXAMPLE,
    "status": "done",
    "label": "done",
    "percent": 100,
    "done": 10,
    "written": 10,
    "rate": 1200.0,
}


class PromotedOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "replay": {**FINISHED_REPLAY_EXAMPLE, "promoted": True},
                    "branch": "main",
                    "head": 38,
                }
            ]
        }
    )

    replay: ReplayOut
    branch: str
    head: int = Field(description="The promote version the branch now points at.")


class DiscardedOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "replay": {**FINISHED_REPLAY_EXAMPLE, "discarded": True},
                    "shadow_branch": "replay/7",
                    "versions": 10,
                    "releasable": True,
                    "detail": "replay 7 discarded: retention no longer keeps the 10 version(s) "
                    "of branch replay/7; the next compaction may release them",
                }
            ]
        }
    )

    replay: ReplayOut
    shadow_branch: str
    versions: int = Field(description="The shadow branch's versions retention stops keeping.")
    releasable: bool = Field(description="True when the stream's policy may now release them.")
    detail: str


def _out(replay: Replay) -> dict[str, Any]:
    progress = replays.progress(replay)
    return {**replays.replay_record(replay), "label": progress.label, "percent": progress.percent}


def _replay_of(request: HttpRequest, slug: str, name: str, replay_id: int, **needs: Any) -> Replay:
    stream = stream_for(request, slug, name, **needs)
    replay = replays.get_replay(stream.project, replay_id)
    if replay.stream_id != stream.pk:
        raise NotFound(f"stream {stream.name} has no replay {replay_id}")
    replay.stream = stream
    return replay


def _actor(request: HttpRequest) -> str:
    return token_of(request).user.get_username()


@router.post(STREAM + "/replays", response={202: ReplayOut, **REPLAY_ERRORS})
def start_replay(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: ReplayIn
) -> Status[dict[str, Any]]:
    """Start a replay on a worker (write scope, editor role); answers 202 with it: poll
    `GET replays/{id}` for its progress. 422 for a range with nothing to replay or an
    unknown reducer version, 410 for a range through versions retention released."""
    stream = stream_for(request, slug, name, write=True)
    replay = replays.start_replay(
        stream,
        end=body.to,
        start=body.start,
        skip_types=body.skip_types,
        skip_events=body.skip_events,
        until=body.until,
        reducer_version=body.reducer_version,
        upcast=body.upcast,
        actor=_actor(request),
    )
    replay.stream = stream
    return Status(202, _out(replay))


@router.get(STREAM + "/replays", response={200: ReplayPage, **READ_ERRORS})
def list_replays(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[PageQuery]
) -> dict[str, Any]:
    """List the stream's replays, newest first, with their progress."""
    stream: Stream = stream_for(request, slug, name)
    rows = Replay.objects.filter(stream=stream).order_by("-id")
    if page.after is not None:
        rows = rows.filter(pk__lt=cursor_key(page.after, int))
    found = list(rows[: page.limit + 1])
    more = len(found) > page.limit
    found = found[: page.limit]
    for row in found:
        row.stream = stream
    return {"items": [_out(r) for r in found], "next": str(found[-1].pk) if more else None}


@router.get(STREAM + "/replays/{replay_id}", response={200: ReplayOut, **READ_ERRORS})
def get_replay(
    request: HttpRequest, slug: SlugPath, name: StreamPath, replay_id: ReplayIdPath
) -> dict[str, Any]:
    """One replay and its progress as last committed: done of total, rate, errors."""
    return _out(_replay_of(request, slug, name, replay_id))


@router.post(STREAM + "/replays/{replay_id}/cancel", response={200: ReplayOut, **REPLAY_ERRORS})
def cancel_replay(
    request: HttpRequest, slug: SlugPath, name: StreamPath, replay_id: ReplayIdPath
) -> dict[str, Any]:
    """Cancel a replay (write scope, editor role): at once when no worker holds it, else at
    the worker's next commit. 422 when it has finished already."""
    replay = _replay_of(request, slug, name, replay_id, write=True)
    cancelled = replays.cancel(replay, actor=_actor(request))
    cancelled.stream = replay.stream
    return _out(cancelled)


@router.post(STREAM + "/replays/{replay_id}/promote", response={200: PromotedOut, **REPLAY_ERRORS})
def promote_replay(
    request: HttpRequest, slug: SlugPath, name: StreamPath, replay_id: ReplayIdPath
) -> dict[str, Any]:
    """Promote a done replay (write scope, editor role): move the replayed branch onto the
    shadow head with a promote version that keeps the old head as its second parent.
    409 `stale_head` when the branch moved since the replay ended; 422 unless done."""
    replay = _replay_of(request, slug, name, replay_id, write=True)
    branch = replays.promote(replay, actor=_actor(request))
    replay.refresh_from_db()
    replay.stream = branch.stream
    return {"replay": _out(replay), "branch": branch.name, "head": branch.head_id}


@router.post(STREAM + "/replays/{replay_id}/discard", response={200: DiscardedOut, **REPLAY_ERRORS})
def discard_replay(
    request: HttpRequest, slug: SlugPath, name: StreamPath, replay_id: ReplayIdPath
) -> dict[str, Any]:
    """Discard a finished, unpromoted replay's shadow branch (write scope, admin role):
    retention stops keeping its versions; recorded in the project's audit stream."""
    replay = _replay_of(
        request, slug, name, replay_id, write=True, role=Role.ADMIN, doing="discarding replays in"
    )
    done = replays.discard(replay, actor=_actor(request))
    replay.refresh_from_db()
    return {
        "replay": _out(replay),
        "shadow_branch": done.shadow_branch,
        "versions": done.versions,
        "releasable": done.releasable,
        "detail": done.done(),
    }

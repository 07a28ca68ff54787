"""A project's log in order (``$all``), its live feed, and time travel (``as of``).

``GET /projects/{slug}/events`` pages the whole log by log position; ``.../events/feed``
serves it as server-sent events (``continust.read.feed``); ``.../streams/{name}/state``
answers a branch's state now or as of a moment or a log position, and
``/projects/{slug}/state`` every stream's as of a log position, causally consistent
(``continust.read.as_of``).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router
from pydantic import ConfigDict, Field, field_validator

from api.access import project_for, stream_for, token_of
from api.errors import READ_ERRORS, STATE_ERRORS
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from api.schemas import (
    EVENT_EXAMPLE,
    STORABLE,
    TIMESTAMP_PATTERN,
    VERSION_EXAMPLE,
    Error,
    EventOut,
    NameCursor,
    Schema,
    SlugPath,
    StreamPath,
    VersionOut,
    timestamp_in_range,
)
from continust.core.errors import ContinustError, InvalidName, NotFound
from continust.core.parsing import BIGINT_MAX, NAME_MAX, NAME_PATTERN
from continust.log.lookup import get_stream
from continust.log.subjects import readable_state
from continust.models import Project, Stream, Version
from continust.read.as_of import AsOf, Clock, head_as_of, head_now, project_as_of
from continust.read.feed import Feed, FeedLimits, entry_record, open_feed
from continust.read.project_log import LogFilter, LogPosition, read_log
from continust.read.records import version_record
from continust.schemas.registry import registry_of

router = Router(tags=["log"])

PROJECT = "/projects/{slug:slug}"
STREAM = PROJECT + "/streams/{streamname:name}"


def _at_most(limit: int) -> str:
    """A regular expression for the numbers 0 to ``limit`` in ASCII digits (leading zeros
    allowed up to ``limit``'s length)."""
    text = str(limit)
    width = len(text)
    choices = [f"[0-9]{{1,{width - 1}}}"]
    for index, digit in enumerate(text):
        if digit != "0":
            rest = width - index - 1
            choices.append(
                text[:index] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else "")
            )
    choices.append(text)
    return "(?:" + "|".join(choices) + ")"


_NUMBER = _at_most(BIGINT_MAX)
LOG_POSITION_PATTERN = rf"^(?:0|{_NUMBER}\.{_NUMBER})$"
LOG_POSITION_HELP = (
    "A log position `T.P` (the transaction that wrote an event and its position; `0` is "
    "the beginning): the `next` of the previous page, or an event's `log_position`."
)
LogPositionText = Annotated[
    str,
    Field(pattern=LOG_POSITION_PATTERN, description=LOG_POSITION_HELP, examples=["0", "812.40"]),
]
Moment = Annotated[
    datetime,
    Field(
        description="RFC 3339 with an offset, in the years 2 to 9997.",
        json_schema_extra={"pattern": TIMESTAMP_PATTERN},
        examples=["2026-01-05T12:00:00Z"],
    ),
]


class LogQuery(Schema):
    """What of the project's log to read: after where, how many, and which events."""

    after: LogPositionText = "0"
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many events.")
    stream: str | None = Field(
        None,
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="Only this stream's events.",
    )
    type: str | None = Field(
        None,
        max_length=200,
        pattern=STORABLE,
        description="Only events whose type starts with this.",
    )
    actor: str | None = Field(
        None, max_length=200, pattern=STORABLE, description="Only this actor's events."
    )
    correlation: UUID | None = Field(None, description="Only events of this correlation id.")
    since: Moment | None = Field(
        None, description="Only events whose timestamp (event time) is at or after this."
    )
    until: Moment | None = Field(
        None, description="Only events whose timestamp (event time) is before this."
    )

    _moments = field_validator("since", "until")(timestamp_in_range)


class FeedQuery(LogQuery):
    """Where the feed starts when the client sends no Last-Event-ID, and which events."""

    limit: int = Field(200, ge=1, le=MAX_LIMIT, description="At most this many events per read.")


LOG_EVENT_EXAMPLE: dict[str, Any] = {**EVENT_EXAMPLE, "log_position": "812.40"}
STATE_EXAMPLE: dict[str, Any] = {"basic": 9, "pro": 31, "team": 99}


class LogEventOut(EventOut):
    model_config = ConfigDict(json_schema_extra={"examples": [LOG_EVENT_EXAMPLE]})

    log_position: str = Field(description="The event's place in the project's log, `T.P`.")


class LogPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [LOG_EVENT_EXAMPLE], "next": "812.40", "caught_up": True}]
        }
    )

    items: list[LogEventOut]
    next: str = Field(
        description="Where to read on (`?after=`): past everything this read covered, even "
        "events the filters left out."
    )
    caught_up: bool = Field(
        description="True when the page is not full: nothing more had settled when it was "
        "read. Read again from `next` later, or follow the feed."
    )


def _where(project: Project, query: LogQuery) -> LogFilter:
    if query.stream is not None:
        get_stream(project, query.stream)  # 404 for a stream the project does not have
    return LogFilter(
        stream=query.stream or "",
        type_prefix=query.type or "",
        actor=query.actor or "",
        correlation=query.correlation,
        since=query.since,
        until=query.until,
    )


@router.get(PROJECT + "/events", response={200: LogPage, **READ_ERRORS})
def list_log(request: HttpRequest, slug: SlugPath, query: Query[LogQuery]) -> dict[str, Any]:
    """Read the project's whole log (`$all`): every event of every stream, in log order.

    Page with `?after=<next>`: nothing is missed and nothing comes twice, however many
    writers commit meanwhile (an event shows once every transaction that began before it
    has ended). The filters narrow the page, never where the next read starts. `next` is
    never null: `caught_up` says whether more had settled.
    """
    project = project_for(request, slug)
    page = read_log(
        project, LogPosition.parse(query.after), limit=query.limit, where=_where(project, query)
    )
    return {
        "items": [entry_record(e, registry_of(project)) for e in page.entries],
        "next": str(page.next),
        "caught_up": page.caught_up,
    }


FEED_RESPONSE = {
    200: {
        "description": "Server-sent events (`text/event-stream`): first `retry: 1000`; then "
        "each event as `id: <log position>`, `event: event`, `data: <the event as JSON, as "
        "the log list gives it>`; after a quiet while a heartbeat comment (`: heartbeat`) "
        "with the `id` read up to. The response ends after a time limit; reconnect with "
        "`Last-Event-ID` (EventSource does) to go on without a gap or a repeat.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "description": "One message; comments (heartbeats) and the first "
                    "`retry` carry no data and are no events.",
                    "type": "object",
                    "required": ["data", "event", "id"],
                    "properties": {
                        "event": {"type": "string", "enum": ["event"]},
                        "id": {"type": "string", "pattern": LOG_POSITION_PATTERN},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/LogEventOut"},
                        },
                        "retry": {"type": "integer", "minimum": 0},
                    },
                },
                "example": {
                    "id": "812.40",
                    "event": "event",
                    "data": json.dumps(LOG_EVENT_EXAMPLE),
                },
            }
        },
    }
}


LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "The `id` of the last message received: the feed goes on after it (and "
    "`after` is ignored). EventSource sends it when it reconnects.",
    "schema": {"type": "string", "pattern": LOG_POSITION_PATTERN},
    "example": "812.40",
}
_LOG_POSITION = re.compile(LOG_POSITION_PATTERN)


@router.get(
    PROJECT + "/events/feed",
    response={429: Error, **READ_ERRORS},
    openapi_extra={"responses": FEED_RESPONSE, "parameters": [LAST_EVENT_ID]},
)
def feed(request: HttpRequest, slug: SlugPath, query: Query[FeedQuery]) -> StreamingHttpResponse:
    """Follow the project's log live, as server-sent events.

    Catches up from `after` (or `Last-Event-ID`) and then sends each event as it settles,
    woken by the database (PostgreSQL `LISTEN`; SQLite polls every second). A response
    lasts at most `CONTINUST_FEED_SECONDS`; a client that stops reading for
    `CONTINUST_FEED_SLOW_SECONDS` is dropped; a token may hold `CONTINUST_FEED_MAX_OPEN`
    feeds at once (429 `too_many_feeds` beyond).
    """
    project = project_for(request, slug)
    where = _where(project, query)
    resume = request.headers.get("Last-Event-ID")
    if resume is not None and not _LOG_POSITION.fullmatch(resume):
        raise InvalidName(f"Last-Event-ID {resume[:40]!r} is not a log position (T.P)")
    after = LogPosition.parse(resume if resume is not None else query.after)
    return serve_feed(project, after, where, f"token:{token_of(request).pk}", query.limit)


def serve_feed(
    project: Project, after: LogPosition, where: LogFilter, holder: str, page: int
) -> StreamingHttpResponse:
    """The streaming response of a feed for ``holder`` (TooManyFeeds over the cap)."""
    base = FeedLimits.from_settings()
    limits = FeedLimits(base.seconds, base.heartbeat, base.slow, page)
    lease = open_feed(holder, limits)
    response = StreamingHttpResponse(
        Feed(project, after, where, limits, lease), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
    return response


# -- time travel ----------------------------------------------------------------

Branch = Annotated[
    str, Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN, description="The branch.")
]


class StateQuery(Schema):
    """Which branch, and the moment to travel to (none: now)."""

    branch: Branch = "main"
    as_of: Moment | None = Field(
        None,
        description="Answer the state the branch had at this moment, on the clock `clock` "
        "names. Leave out for the state now.",
    )
    clock: Literal["recorded", "event"] = Field(
        "recorded",
        description="`recorded`: when the log recorded each move of the branch (the "
        "version's `created_at`); `event`: the timestamp of the event that made each head.",
    )

    _moments = field_validator("as_of")(timestamp_in_range)


class PositionStateQuery(Schema):
    """Which branch, and the log position to travel to."""

    branch: Branch = "main"
    as_of_position: LogPositionText


class StateAsOfOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pricing",
                    "branch": "main",
                    "as_of": "2026-12-06T04:00:00+00:00",
                    "clock": "recorded",
                    "as_of_position": None,
                    "version": VERSION_EXAMPLE,
                    "state": STATE_EXAMPLE,
                }
            ]
        }
    )

    stream: str
    branch: str
    as_of: str | None = Field(description="The moment asked for, if any.")
    clock: str | None = Field(description="`recorded` or `event` with `as_of`, else null.")
    as_of_position: str | None = Field(description="The log position asked for, if any.")
    version: VersionOut
    state: dict[str, Any]


def _version_out(stream: Stream, version: Version) -> dict[str, Any]:
    version.stream = stream
    return version_record(version)


def _state_as_of(stream: Stream, branch: str, when: AsOf | None, **asked: Any) -> dict[str, Any]:
    version = head_now(stream, branch) if when is None else head_as_of(stream, branch, when)
    if version is None:
        raise NotFound(
            f"branch {branch!r} of {stream.name!r} had no version as of "
            f"{when.describe() if when else 'now'}"
        )
    return {
        "stream": stream.name,
        "branch": branch,
        "as_of": None,
        "clock": None,
        "as_of_position": None,
        **asked,
        "version": _version_out(stream, version),
        "state": readable_state(version),
    }


@router.get(STREAM + "/state", response={200: StateAsOfOut, **STATE_ERRORS})
def state(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[StateQuery]
) -> dict[str, Any]:
    """Return a branch's state now, or as of a moment (`as_of`, on the `clock` named: the
    time the log recorded each move, or the events' own timestamps): the state of the
    version the branch pointed at then. 404 when the branch had no version yet then."""
    stream = stream_for(request, slug, name)
    if query.as_of is None:
        return _state_as_of(stream, query.branch, None)
    when = AsOf(moment=query.as_of, clock=Clock(query.clock))
    return _state_as_of(
        stream, query.branch, when, as_of=query.as_of.isoformat(), clock=query.clock
    )


@router.get(STREAM + "/state/as-of-position", response={200: StateAsOfOut, **STATE_ERRORS})
def state_at_position(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PositionStateQuery]
) -> dict[str, Any]:
    """Return a branch's state as of a log position (`T.P`): the state of the version the
    last move it had seen left the branch at. 404 when the branch had no version yet."""
    stream = stream_for(request, slug, name)
    at = LogPosition.parse(query.as_of_position)
    return _state_as_of(stream, query.branch, AsOf(position=at), as_of_position=str(at))


class ProjectStateQuery(Schema):
    as_of_position: LogPositionText
    branch: Branch = "main"
    after: NameCursor | None = None
    limit: int = Field(
        20, ge=1, le=100, description="At most this many streams (with their states)."
    )


class StreamStateOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pricing",
                    "included_to": "812.40",
                    "version": VERSION_EXAMPLE,
                    "state": STATE_EXAMPLE,
                    "released": False,
                }
            ]
        }
    )

    stream: str
    included_to: str = Field(
        description="The last log position of this stream included: `as_of_position`, or "
        "earlier where an event's cause came after it."
    )
    version: VersionOut | None = Field(description="Null: the branch had no version yet.")
    state: dict[str, Any] | None = Field(description="Null with no version, or when released.")
    released: bool = Field(description="True when retention released this version's state.")


class ProjectStatePage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of_position": "812.40",
                    "branch": "main",
                    "items": [
                        {
                            "stream": "pricing",
                            "included_to": "812.40",
                            "version": VERSION_EXAMPLE,
                            "state": STATE_EXAMPLE,
                            "released": False,
                        }
                    ],
                    "next": None,
                }
            ]
        }
    )

    as_of_position: str
    branch: str
    items: list[StreamStateOut]
    next: str | None


@router.get(PROJECT + "/state", response={200: ProjectStatePage, **READ_ERRORS})
def project_state(
    request: HttpRequest, slug: SlugPath, query: Query[ProjectStateQuery]
) -> dict[str, Any]:
    """Return every stream's `branch` state as of a log position, by stream name, causally
    consistent: no event whose cause (directly or not) comes after the position is
    included, nor anything after it in its stream. Streams without the branch are left
    out."""
    project = project_for(request, slug)
    at = LogPosition.parse(query.as_of_position)
    streams = Stream.objects.filter(project=project).order_by("name")
    if query.after is not None:
        streams = streams.filter(name__gt=query.after)
    chosen = list(streams[: query.limit + 1])
    more = len(chosen) > query.limit
    chosen = chosen[: query.limit]
    items = []
    for found in project_as_of(project, at, branch=query.branch, streams=chosen):
        record: dict[str, Any] = {
            "stream": found.stream.name,
            "included_to": str(found.bound),
            "version": None,
            "state": None,
            "released": False,
        }
        if found.version is not None:
            record["version"] = _version_out(found.stream, found.version)
            try:
                record["state"] = readable_state(found.version)
            except ContinustError:
                record["released"] = True
        items.append(record)
    return {
        "as_of_position": str(at),
        "branch": query.branch,
        "items": items,
        "next": chosen[-1].name if more and chosen else None,
    }

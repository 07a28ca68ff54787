"""Integrity over HTTP: blame a path, verify a stream or a project (at once, or fanned
out over the workers with progress), take a digest, check the log against one, and
export a stream as JSON Lines.

Each is a read: any member the token may see a project of may call them, as the
``blame``, ``verify``, ``digest`` and ``export_jsonl`` commands need no role.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict, Field, field_validator

from api.access import project_for, stream_for, token_of
from api.errors import READ_ERRORS, STATE_ERRORS
from api.schemas import (
    POINTER,
    Error,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
    StrictSchema,
    _whole_number,
)
from continust.audit import fanout, integrity
from continust.audit.blame import blame
from continust.audit.digests import take_digest, verify_digest
from continust.core.errors import ContinustError, InvalidEvent
from continust.core.parsing import BIGINT_MAX, NAME_MAX, NAME_PATTERN, SLUG_MAX, SLUG_PATTERN
from continust.documents.diff import MISSING
from continust.interchange.jsonl import export_lines
from continust.log.canonical import timestamp_text
from continust.log.lookup import resolve_version

router = Router(tags=["integrity"])

VerificationIdPath = Annotated[
    int, param.Path(ge=0, le=BIGINT_MAX, description="A verification's id.")
]

PROJECT = "/projects/{slug:slug}"
STREAM = PROJECT + "/streams/{streamname:name}"
NDJSON = "application/x-ndjson"
# A digest's entries, one per stream; the document as `digest` writes it.
DIGEST_EXAMPLE: dict[str, Any] = {
    "format": "continust-digest/1",
    "taken_at": "2026-12-06T04:00:00.000000Z",
    "project": "acme",
    "streams": [
        {
            "project": "acme",
            "stream": "pricing",
            "events": 3,
            "head": "5d41402abc4b2a76b9719d911017c592" * 2,
            "branches": {"main": {"head": "7f83b1657ff1fc53b92dc18148a1d65d" * 2, "moves": 3}},
        }
    ],
    "root": "e3b0c44298fc1c149afbf4c8996fb924" * 2,
}

_EVENT_ID = "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e"
# A stream's export, as `export_jsonl --stream` writes it: one JSON record a line.
EXPORT_EXAMPLE = "".join(
    json.dumps(line, separators=(",", ":")) + "\n"
    for line in (
        {
            "kind": "stream",
            "name": "pricing",
            "reducer": "merge",
            "reducer_version": 1,
            "retention": "eternal",
        },
        {
            "kind": "event",
            "stream": "pricing",
            "id": _EVENT_ID,
            "seq": 1,
            "type": "tier.added",
            "timestamp": "2026-12-06T04:00:00.000000+00:00",
            "payload": {"pro": 29},
            "causation": None,
            "correlation": None,
            "actor": "alice",
            "prev_hash": "0" * 64,
            "hash": "5d41402abc4b2a76b9719d911017c592" * 2,
        },
        {
            "kind": "version",
            "stream": "pricing",
            "ref": 1,
            "event": _EVENT_ID,
            "parents": [],
            "key": None,
            "branch": "main",
            "reducer": "merge",
            "reducer_version": 1,
            "state_hash": "9a0364b9e99bb480dd25e1f0284c8555" * 2,
            "digest": "7f83b1657ff1fc53b92dc18148a1d65d" * 2,
        },
        {
            "kind": "move",
            "stream": "pricing",
            "branch": "main",
            "old_head": None,
            "new_head": 1,
            "reason": "append",
            "actor": "alice",
            "at": "2026-12-06T04:00:00.000000+00:00",
            "prev_hash": "0" * 64,
            "hash": "e3b0c44298fc1c149afbf4c8996fb924" * 2,
        },
        {"kind": "branch", "stream": "pricing", "name": "main", "head": 1},
    )
)


class BlameQuery(Schema):
    of: Ref = Field(description="The version whose value is blamed (default: main).")
    path: str = Field(
        min_length=1,
        max_length=1000,
        pattern=POINTER,
        description="An RFC 6901 JSON Pointer into the version's state, e.g. `/tiers/pro`.",
    )
    depth: int = Field(20, ge=1, le=200, description="At most this many changes, newest first.")


class BlameChangeOut(Schema):
    version: int
    event: str
    event_type: str
    actor: str
    timestamp: str
    value: Any = Field(description="The value this version set.")
    previous: Any = Field(description="The value before it; null when `added`.")
    added: bool = Field(description="True when the path appeared here.")


class BlameOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pricing",
                    "version": 14,
                    "path": "/pro",
                    "value": 31,
                    "complete": True,
                    "changes": [
                        {
                            "version": 13,
                            "event": "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e",
                            "event_type": "tier.repriced",
                            "actor": "alice",
                            "timestamp": "2026-12-06T04:00:00.000000Z",
                            "value": 31,
                            "previous": 29,
                            "added": False,
                        }
                    ],
                }
            ]
        }
    )

    stream: str
    version: int
    path: str
    value: Any
    complete: bool = Field(description="False when the history was cut at `depth`.")
    changes: list[BlameChangeOut] = Field(description="Newest first.")


class BrokenOut(Schema):
    project: str
    stream: str
    version: int | None
    where: str
    reason: str


class VerifyOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "streams": 1,
                    "events": 3,
                    "versions": 3,
                    "heads": {"acme/pricing": "5d41402abc4b2a76b9719d911017c592" * 2},
                    "broken": None,
                    "broken_streams": [],
                    "breaks": [],
                }
            ]
        }
    )

    ok: bool
    streams: int
    events: int
    versions: int
    heads: dict[str, str] = Field(description="Each stream's chain head, `project/stream`.")
    broken: BrokenOut | None = Field(description="The first break, if any.")
    broken_streams: list[str]
    breaks: list[BrokenOut] = Field(description="Every broken link of every stream.")


class VerificationOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "requested_by": "alice",
                    "requested_at": "2026-12-06T04:00:00Z",
                    "finished_at": "2026-12-06T04:00:03Z",
                    "streams": 1,
                    "done": 1,
                    "broken_streams": 0,
                    "report": {
                        "ok": True,
                        "streams": 1,
                        "events": 3,
                        "versions": 3,
                        "heads": {"acme/pricing": "5d41402abc4b2a76b9719d911017c592" * 2},
                        "broken": None,
                        "broken_streams": [],
                        "breaks": [],
                    },
                }
            ]
        }
    )

    id: int
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None = Field(description="When the last stream was verified.")
    streams: int = Field(description="Streams to verify, one task each.")
    done: int = Field(description="Streams verified so far.")
    broken_streams: int = Field(description="Streams verified so far with a break.")
    report: VerifyOut | None = Field(
        description="Once every stream is verified, the report `GET verify` gives; null until then."
    )


class DigestBranchOut(Schema):
    head: str = Field(description="The digest of the version the branch points at.")
    moves: int


class DigestEntryOut(Schema):
    project: str
    stream: str
    events: int
    head: str = Field(description="The hash of the stream's last event.")
    branches: dict[str, DigestBranchOut]


class DigestOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [DIGEST_EXAMPLE]})

    format: str
    taken_at: str
    project: str | None
    streams: list[DigestEntryOut]
    root: str = Field(description="The Merkle root over the entries, in order.")


Count = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class DigestBranchIn(StrictSchema):
    head: Hash
    moves: Count

    _whole = field_validator("moves", mode="before")(_whole_number)


class DigestEntryIn(StrictSchema):
    project: str = Field(max_length=SLUG_MAX, pattern=SLUG_PATTERN)
    stream: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    events: Count
    head: Hash
    # Only names that match: pydantic's patternProperties leaves any other key open.
    branches: dict[
        Annotated[str, Field(max_length=NAME_MAX, pattern=NAME_PATTERN)], DigestBranchIn
    ] = Field(json_schema_extra={"additionalProperties": False})

    _whole = field_validator("events", mode="before")(_whole_number)


class DigestIn(StrictSchema):
    """A digest document, as `GET digest` (or the `digest` command) wrote it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [DIGEST_EXAMPLE]})

    format: Literal["continust-digest/1"]
    taken_at: str = Field(max_length=100, pattern=r"^[^\u0000]*$")
    project: str | None = Field(None, max_length=SLUG_MAX, pattern=SLUG_PATTERN)
    streams: list[DigestEntryIn] = Field(max_length=100_000)
    root: Hash


def _json(value: Any) -> Any:
    return None if value is MISSING else value


@router.get(STREAM + "/blame", response={200: BlameOut, **STATE_ERRORS})
def blame_path(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[BlameQuery]
) -> dict[str, Any]:
    """Blame: which versions last changed the value at `path` of a version's state, and
    what it was before each, newest first (as `git blame` for one JSON value). 404 when
    the version has nothing at the path."""
    stream = stream_for(request, slug, name)
    version = resolve_version(stream, query.of)
    found = blame(stream, version, query.path, depth=query.depth)
    return {
        "stream": stream.name,
        "version": version.pk,
        "path": found.path,
        "value": found.value,
        "complete": found.complete,
        "changes": [
            {
                "version": c.version.pk,
                "event": str(c.version.event_id),
                "event_type": c.version.event.type,
                "actor": c.version.event.actor,
                "timestamp": timestamp_text(c.version.event.timestamp),
                "value": _json(c.value),
                "previous": _json(c.previous),
                "added": c.added,
            }
            for c in found.changes
        ],
    }


@router.get(STREAM + "/verify", response={200: VerifyOut, **READ_ERRORS})
def verify_stream(request: HttpRequest, slug: SlugPath, name: StreamPath) -> dict[str, Any]:
    """Verify the stream: its hash chain, every version's state and digest, and its branch
    heads against their recorded moves. `ok` is false and `breaks` names every broken
    link; the answer is 200 either way."""
    stream = stream_for(request, slug, name)
    return integrity.verify(streams=[stream]).as_dict()


@router.get(PROJECT + "/verify", response={200: VerifyOut, **READ_ERRORS})
def verify_project(request: HttpRequest, slug: SlugPath) -> dict[str, Any]:
    """Verify every stream of the project, as `GET .../streams/{name}/verify` does one.
    A large project takes a while: the `verify` command does the same from a shell."""
    return integrity.verify(project_for(request, slug)).as_dict()


def _verification(verification: Any) -> dict[str, Any]:
    progress = fanout.progress(verification)
    finished = verification.finished_at is not None
    return {
        "id": verification.pk,
        "requested_by": verification.requested_by,
        "requested_at": verification.requested_at,
        "finished_at": verification.finished_at,
        "streams": verification.streams,
        "done": progress.done,
        "broken_streams": progress.broken_streams,
        "report": fanout.report(verification).as_dict() if finished else None,
    }


@router.post(PROJECT + "/verifications", response={202: VerificationOut, **READ_ERRORS})
def start_verification(request: HttpRequest, slug: SlugPath) -> Status[dict[str, Any]]:
    """Verify every stream of the project on the Celery workers, one task per stream side
    by side, as `verify --fan-out` does; answers at once (202). Follow it with `GET
    verifications/{id}`: `done` of `streams`, then the report. A read: any member may."""
    project = project_for(request, slug)
    actor = token_of(request).user.get_username()
    return Status(202, _verification(fanout.start(project, actor=actor)))


@router.get(
    PROJECT + "/verifications/{verification_id}",
    response={200: VerificationOut, **READ_ERRORS},
)
def get_verification(
    request: HttpRequest, slug: SlugPath, verification_id: VerificationIdPath
) -> dict[str, Any]:
    """A fanned-out verification's progress, and its report once it finished (a stream
    that could not be verified is a break naming the error)."""
    return _verification(fanout.get(project_for(request, slug), verification_id))


@router.get(PROJECT + "/digest", response={200: DigestOut, **READ_ERRORS})
def digest(request: HttpRequest, slug: SlugPath) -> dict[str, Any]:
    """A digest of the project now: per stream its head hash, event count and branch
    heads, under one root. Keep it; `POST digest/verify` (or `verify --digest FILE`)
    later shows whether anything was cut off or moved back since."""
    return take_digest(project_for(request, slug))


@router.post(PROJECT + "/digest/verify", response={200: VerifyOut, **READ_ERRORS, 422: Error})
def verify_against_digest(request: HttpRequest, slug: SlugPath, body: DigestIn) -> dict[str, Any]:
    """Verify the project's streams a digest covers, and that the log still extends it:
    no stream cut short, no branch moved back. Entries of other projects are ignored.
    422 `invalid_event` for a document that is not a digest (a wrong root, say)."""
    project = project_for(request, slug)
    try:
        return verify_digest(body.model_dump(), project).as_dict()
    except ContinustError as err:
        if type(err) is ContinustError:  # the digest itself is refused
            raise InvalidEvent(str(err)) from err
        raise


def _lines(project: Any, names: list[str] | None = None) -> Iterator[bytes]:
    for line in export_lines(project, names):
        yield line.encode()


@router.get(
    STREAM + "/export",
    response=READ_ERRORS,
    openapi_extra={
        "responses": {
            "200": {
                "description": "The stream as JSON Lines: a stream record, then its events "
                "in log order, a compacted stream's policy, compactions, released runs and "
                "the states an import cannot fold, then its versions, its branches' moves, "
                "its branches and its finished replays.",
                "content": {NDJSON: {"schema": {"type": "string"}, "example": EXPORT_EXAMPLE}},
            }
        }
    },
)
def export_stream(request: HttpRequest, slug: SlugPath, name: StreamPath) -> StreamingHttpResponse:
    """Export the stream as JSON Lines, as `export_jsonl --stream` writes it: `import_jsonl`
    reads it back exactly."""
    stream = stream_for(request, slug, name)
    response = StreamingHttpResponse(_lines(stream.project, [stream.name]), content_type=NDJSON)
    filename = stream.name.replace("/", "_")
    response["Content-Disposition"] = f'attachment; filename="{filename}.jsonl"'
    return response


@router.get(
    PROJECT + "/export",
    response=READ_ERRORS,
    openapi_extra={
        "responses": {
            "200": {
                "description": "Every stream of the project as JSON Lines, as `export_jsonl "
                "--project` writes it: each stream as `GET .../streams/{name}/export` gives "
                "it, then the audit stream with the reviews, tags and audit records.",
                "content": {NDJSON: {"schema": {"type": "string"}, "example": EXPORT_EXAMPLE}},
            }
        }
    },
)
def export_project(request: HttpRequest, slug: SlugPath) -> StreamingHttpResponse:
    """Export the whole project as JSON Lines (`export_jsonl --project`): `import_jsonl`
    into an empty project reads every row a user sees back exactly. Personal values stay
    sealed."""
    project = project_for(request, slug)
    response = StreamingHttpResponse(_lines(project), content_type=NDJSON)
    response["Content-Disposition"] = f'attachment; filename="{project.slug}.jsonl"'
    return response

"""The API's request and response bodies, as the OpenAPI spec shows them.

Requests are strict (unknown fields, blank types or control characters where
they cannot be stored are a 400); responses mirror ``continust.read.records``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.conf import settings
from ninja.params import functions as param
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from continust.core.errors import InvalidName
from continust.core.parsing import (
    BIGINT_MAX,
    NAME_MAX,
    NAME_PATTERN,
    POSITION_PATTERN,
    SLUG_MAX,
    SLUG_PATTERN,
    SPACES,
    TEXT_PATTERN,
    parse_timestamp,
)
from continust.log.policy import MAX_HORIZON_VERSIONS

# The rules of continust.core.parsing, as patterns every regular-expression engine reads alike.
STORABLE = r"^[^\u0000]*$"  # PostgreSQL stores no NUL
NON_BLANK = rf"^[^\u0000]*[^{SPACES}\u0000][^\u0000]*$"
# An RFC 6901 JSON Pointer: "" (the whole document) or "/"-led tokens, "~" only as ~0 or ~1.
POINTER = r"^(/([^/~\u0000]|~[01])*)*$"
# What a payload may hold, as the spec says it. Validating it so would slow every append; the
# strict JSON parser refuses the same NUL (and lone surrogates) as a 400 before validation.
STORED_JSON_REF = "#/components/schemas/StoredJSON"
STORED_JSON: dict[str, Any] = {
    "description": "Any JSON value whose strings, keys included, hold no U+0000.",
    "anyOf": [
        {"type": "string", "pattern": STORABLE},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": STORED_JSON_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": STORABLE},
            "additionalProperties": {"$ref": STORED_JSON_REF},
        },
    ],
}
# pydantic resolves every $ref it meets, so the payload names StoredJSON by a mark that
# ContinustAPI turns into the $ref.
STORED_JSON_MARK = {"x-continust-stored-json": True}
PAYLOAD_SCHEMA: dict[str, Any] = {
    "propertyNames": {"pattern": STORABLE},
    "additionalProperties": STORED_JSON_MARK,
}
# Years 2 to 9997: whatever the offset, the moment stays within the years 1 to 9998.
TIMESTAMP_PATTERN = (
    r"^(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}"
    r"|99[0-8][0-9]|999[0-7])-"
)


# -- examples: one story, as the API answers it ---------------------------------------
# Project acme, stream pricing, whose state holds each tier's price; version 14 is main's head.


def _hex(seed: str) -> str:
    """A 64-digit hexadecimal hash, as the log's SHA-256 hashes read."""
    return (seed * 64)[:64]


EVENT_ID = "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e"
CAUSE_ID = "5f0c2a9d-3e41-4b7a-8c6d-2e9f1a0b3c4d"
EVENT_EXAMPLE: dict[str, Any] = {
    "id": EVENT_ID,
    "stream": "pricing",
    "position": 14,
    "seq": 14,
    "type": "tier.repriced",
    "timestamp": "2026-12-06T04:00:00.000000+00:00",
    "payload": {"pro": 31},
    "causation": CAUSE_ID,
    "correlation": None,
    "actor": "alice",
    "hash": _hex("5d41402a"),
}
VERSION_EXAMPLE: dict[str, Any] = {
    "id": 14,
    "stream": "pricing",
    "branch": "main",
    "key": None,
    "generation": 14,
    "parents": [13],
    "event": EVENT_ID,
    "event_type": "tier.repriced",
    "state_hash": _hex("9a0364b9"),
    "digest": _hex("7f83b165"),
    "reducer": "merge@1",
}
STREAM_EXAMPLE: dict[str, Any] = {
    "name": "pricing",
    "reducer": "merge",
    "reducer_version": 1,
    "retention": "eternal",
    "event_count": 14,
    "created_at": "2026-12-01T09:30:00Z",
}
BRANCH_EXAMPLE: dict[str, Any] = {"name": "sale", "head": 12, "created_at": "2026-12-06T04:10:00Z"}
POLICY_EXAMPLE: dict[str, Any] = {
    "kind": "ephemeral",
    "snapshot_every": None,
    "horizon_versions": 1000,
    "horizon_age": "90d",
}


def _whole_or_text(value: Any) -> Any:
    """Read a JSON number without a fraction (``5`` or ``5.0``) as an int; refuse true and
    false, which Python counts as numbers."""
    if isinstance(value, bool):
        raise ValueError("a whole number is needed")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def timestamp_in_range(value: datetime | None) -> datetime | None:
    """A timestamp the log can store (``parse_timestamp``'s range), for a field validator."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except InvalidName as err:
        raise ValueError(str(err)) from None


def _whole_number(value: Any) -> Any:
    """As ``_whole_or_text``, and refuse text too: ``"5"`` is not a number in JSON."""
    if isinstance(value, str):
        raise ValueError("a whole number is needed")
    return _whole_or_text(value)


# A whole number as JSON Schema means one: 5 and 5.0 alike, never "5" or true.


SlugPath = Annotated[
    str, param.Path(pattern=SLUG_PATTERN, max_length=SLUG_MAX, description="A project's slug.")
]
StreamPath = Annotated[
    str,
    param.Path(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX,
        description="A stream's name; it may contain `/` (see the API's description).",
    ),
]
VersionIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A version's id.")]
EventIdPath = Annotated[UUID, param.Path(description="An event's id.")]
CompactionIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A compaction's id.")]

Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=TEXT_PATTERN,
        description="A version as git users name one: its id (`12` or `v12`), a branch, a "
        "tag or an external key, optionally followed by `~n` (n first parents back) and "
        "`^n` (the n-th parent) steps: `main~3`, `v120^2`. Trimmed of white space at both "
        "ends; a revision that does not resolve is a 422 `bad_revision`.",
    ),
]
PositionCursor = Annotated[
    str,
    Field(pattern=POSITION_PATTERN, description="The `next` cursor of the previous page."),
]
NameCursor = Annotated[
    str,
    Field(
        max_length=NAME_MAX,
        pattern=STORABLE,
        description="The `next` cursor of the previous page; empty: from the start, as "
        "every name sorts after it.",
    ),
]
PairCursor = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}\.[0-9]{1,18}\.[0-9]{1,18}$",
        description="The `next` cursor of the previous page.",
    ),
]
AncestorsCursor = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,18}\.[0-9]{1,18}$", description="The `next` cursor of the previous page."
    ),
]


class Schema(BaseModel):
    """A plain pydantic model.

    The API validates plain dicts, never ORM objects, so ninja's own ``Schema``
    (which routes every field through an ORM-aware getter) would only cost time:
    a third of a 1,000-event append went there.
    """


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class PageQuery(Schema):
    """A page of a list ordered by id or position."""

    after: PositionCursor | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many items.")


class NamePageQuery(PageQuery):
    """A page of a list ordered by name."""

    after: NameCursor | None = None


# -- errors ------------------------------------------------------------------


class Error(Schema):
    """Every error answers with a machine-readable code and a sentence for people."""

    code: str = Field(description="`not_found`, `unauthorized`, `forbidden`, ...")
    detail: str


class Issue(Schema):
    loc: list[str | int]
    msg: str
    type: str


class BadRequest(Error):
    """400: the body is not JSON, or the request does not match the schema."""

    errors: list[Issue] = Field(default_factory=list)


class ConflictOut(Schema):
    """A path both sides of a merge changed differently; an absent value is null and named
    in `absent`."""

    path: str
    base: Any = None
    ours: Any = None
    theirs: Any = None
    absent: list[Literal["base", "ours", "theirs"]] = Field(
        description="Which of base, ours and theirs have no value at the path."
    )


class Conflict(Error):
    """409: a stale expected head (``current_head`` says where the branch is), an event id
    already recorded with other content, a name taken, or a merge's unresolved conflicts."""

    current_head: int | None = Field(
        None, description="For `stale_head`: the version the branch points at now."
    )
    conflicts: list[ConflictOut] | None = Field(
        None, description="For `merge_conflict`: the conflicting paths still to resolve."
    )


# -- projects and streams -----------------------------------------------------


class ProjectOut(Schema):
    slug: str
    name: str
    role: str = Field(description="The token user's role in the project.")


class ProjectPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [{"slug": "acme", "name": "Acme", "role": "editor"}], "next": None}
            ]
        }
    )

    items: list[ProjectOut]
    next: str | None


class StreamIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "pricing", "reducer": "merge"}]}
    )

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    reducer: str = Field("merge", min_length=1, max_length=100, pattern=TEXT_PATTERN)
    reducer_version: int | None = Field(None, ge=1, le=2_147_483_647)

    _whole = field_validator("reducer_version", mode="before")(_whole_number)


class StreamOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [STREAM_EXAMPLE]})

    name: str
    reducer: str
    reducer_version: int
    retention: str
    event_count: int
    created_at: datetime


class StreamPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [STREAM_EXAMPLE], "next": "pricing"}]}
    )

    items: list[StreamOut]
    next: str | None


# -- events and versions -------------------------------------------------------


class EventIn(StrictSchema):
    id: UUID | None = Field(
        None,
        description="The idempotency key: a retried event with the same id is not "
        "recorded twice. A new UUID when left out.",
    )
    type: str = Field(min_length=1, max_length=200, pattern=NON_BLANK)
    payload: dict[str, Any] = Field(json_schema_extra=PAYLOAD_SCHEMA)
    timestamp: datetime | None = Field(
        None,
        description="RFC 3339 with an offset, in the years 2 to 9997; now when left out.",
        json_schema_extra={"pattern": TIMESTAMP_PATTERN},
    )
    causation: UUID | None = Field(
        None,
        description="The id of an earlier event of the "
        "project (or of this batch) that caused this one.",
    )
    correlation: UUID | None = None
    actor: str = Field("", max_length=200, pattern=STORABLE)

    _in_range = field_validator("timestamp")(timestamp_in_range)


class AppendIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "id": EVENT_ID,
                            "type": "tier.repriced",
                            "payload": {"pro": 31},
                            "causation": CAUSE_ID,
                            "actor": "alice",
                        }
                    ],
                    "branch": "main",
                    "expected_head": 13,
                }
            ]
        },
    )

    events: list[EventIn] = Field(
        min_length=1,
        max_length=settings.CONTINUST_MAX_BATCH_EVENTS,
        description="Appended in order, all or none.",
    )
    branch: str = Field("main", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    expected_head: int | None = Field(
        None,
        ge=0,
        le=BIGINT_MAX,
        description="The version id the writer believes the branch points at; `null`: the "
        "branch must not exist yet. Leave it out to append wherever the branch is.",
    )

    _whole = field_validator("expected_head", mode="before")(_whole_number)


class VersionOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [VERSION_EXAMPLE]})

    id: int
    stream: str
    branch: str
    key: str | None
    generation: int
    parents: list[int]
    event: UUID
    event_type: str
    state_hash: str
    digest: str
    reducer: str


class VersionDetail(VersionOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **VERSION_EXAMPLE,
                    "seq": 14,
                    "event_hash": EVENT_EXAMPLE["hash"],
                    "children": [],
                    "heads": ["main"],
                    "cause_count": 1,
                    "consequence_count": 0,
                    "state": {"basic": 9, "pro": 31},
                }
            ]
        }
    )

    seq: int = Field(description="The event's position in the stream's hash chain.")
    event_hash: str
    children: list[int]
    heads: list[str] = Field(description="The branches whose head this version is.")
    cause_count: int = Field(description="The length of the event's cause chain.")
    consequence_count: int = Field(
        description="Events caused by this one, directly or not (counted up to 200)."
    )
    state: dict[str, Any]


class VersionPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [VERSION_EXAMPLE], "next": "14"}]}
    )

    items: list[VersionOut]
    next: str | None


class AppendOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"created": True, "branch": "main", "head": 14, "versions": [VERSION_EXAMPLE]}
            ]
        }
    )

    created: bool = Field(description="False when every event was already recorded: a retry.")
    branch: str
    head: int = Field(description="The last version of the batch.")
    versions: list[VersionOut]


class EventOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: UUID
    stream: str
    position: int
    seq: int
    type: str
    timestamp: str
    payload: dict[str, Any] | None = Field(
        description="The event's payload; null once retention released it (an ephemeral "
        "stream's compaction keeps the event and its hash, not its payload).",
        json_schema_extra=PAYLOAD_SCHEMA,
    )
    causation: UUID | None
    correlation: UUID | None
    actor: str
    hash: str
    stored_payload: dict[str, Any] | None = Field(
        None,
        description="When an upcaster changed the payload: the payload as stored (and "
        "hashed), in the type's version `upcast_from`. `payload` is in the newest version.",
        json_schema_extra=PAYLOAD_SCHEMA,
    )
    upcast_from: int | None = Field(
        None, description="The version of the event's type the stored payload is in."
    )


class EventPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EVENT_EXAMPLE], "next": "14"}]}
    )

    items: list[EventOut]
    next: str | None


class BranchOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [BRANCH_EXAMPLE]})

    name: str
    head: int
    created_at: datetime


class BranchPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [BRANCH_EXAMPLE, {**BRANCH_EXAMPLE, "name": "main", "head": 14}],
                    "next": None,
                }
            ]
        }
    )

    items: list[BranchOut]
    next: str | None


# -- lineage and diffs -----------------------------------------------------------


class MergeBasesOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"a": 14, "b": 15, "merge_bases": [12]}]}
    )

    a: int
    b: int
    merge_bases: list[int] = Field(
        description="All best common ancestors, as `git merge-base --all`."
    )


class RangePage(Schema):
    """A page of version ids, newest first, with how many the whole range holds."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 2, "items": [14, 13], "next": None}]}
    )

    count: int
    items: list[int]
    next: str | None


class AncestorsOut(RangePage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"version": 14, "count": 14, "items": [13, 12], "next": "12"}]
        }
    )

    version: int


class BetweenOut(RangePage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"a": 12, "b": 14, "count": 2, "items": [14, 13], "next": None}]
        }
    )

    a: int
    b: int


class PathOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "a": 14,
                    "b": 15,
                    "base": 12,
                    "from_a": [14, 13],
                    "from_b": [15],
                    "truncated": False,
                }
            ]
        }
    )

    a: int
    b: int
    base: int | None = Field(
        description="The merge base the paths run down to; null when "
        "the versions share no ancestor."
    )
    from_a: list[int]
    from_b: list[int]
    truncated: bool = Field(description="True when a path was cut at the limit.")


class ChangeOut(Schema):
    op: Literal["add", "remove", "replace", "move"]
    path: str
    from_: str | None = Field(None, alias="from")
    old: Any = None
    new: Any = None


class ChangesOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "a": 12,
                    "b": 14,
                    "count": 2,
                    "items": [
                        {"op": "replace", "path": "/pro", "old": 29, "new": 31},
                        {"op": "add", "path": "/team", "new": 99},
                    ],
                    "next": None,
                }
            ]
        }
    )

    a: int
    b: int
    count: int
    items: list[ChangeOut]
    next: str | None


class JsonPatchOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "a": 12,
                    "b": 14,
                    "count": 2,
                    "items": [
                        {"op": "replace", "path": "/pro", "value": 31},
                        {"op": "add", "path": "/team", "value": 99},
                    ],
                    "next": None,
                }
            ]
        }
    )

    a: int
    b: int
    count: int
    items: list[dict[str, Any]] = Field(
        description="RFC 6902 operations; the pages applied in order turn a's state into b's."
    )
    next: str | None


class MergePatchOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"a": 12, "b": 14, "merge_patch": {"pro": 31, "team": 99}}]}
    )

    a: int
    b: int
    merge_patch: Any = Field(description="An RFC 7396 merge patch from a's state to b's.")


# -- causation -----------------------------------------------------------------


class ConsequenceOut(Schema):
    depth: int
    cause: UUID
    event: EventOut


class CausationOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": {
                        **EVENT_EXAMPLE,
                        "id": CAUSE_ID,
                        "type": "tier.reviewed",
                        "position": 13,
                        "seq": 13,
                        "payload": {"tier": "pro"},
                        "causation": None,
                    },
                    "causes": [],
                    "consequences": [{"depth": 1, "cause": CAUSE_ID, "event": EVENT_EXAMPLE}],
                    "truncated": False,
                }
            ]
        }
    )

    event: EventOut
    causes: list[EventOut] = Field(description="Nearest cause first, back to the root cause.")
    consequences: list[ConsequenceOut] = Field(description="Depth first.")
    truncated: bool


# -- retention and compaction -----------------------------------------------------


class PolicyIn(StrictSchema):
    """A retention policy; each kind takes only its own settings."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "ephemeral", "horizon_versions": 1000, "horizon_age": "90d"}]
        },
    )

    kind: Literal["eternal", "selective", "ephemeral"] = Field(
        description="`eternal` keeps everything; `selective` keeps every event and stores a "
        "state every `snapshot_every` versions; `ephemeral` releases payloads and states "
        "beyond a horizon."
    )
    snapshot_every: int | None = Field(
        None,
        description="selective: store a state every this many generations (2 to "
        "1,000,000; 100 when left out).",
    )
    horizon_versions: int | None = Field(
        None, le=MAX_HORIZON_VERSIONS, description="ephemeral: keep the newest this many versions."
    )
    # Text the log can store (no U+0000, as every string of a body): the spec says so, and
    # a body with one is a 400 as it says.
    horizon_age: int | Annotated[str, StringConstraints(pattern=STORABLE)] | None = Field(
        None,
        description="ephemeral: keep the versions younger than this: `90d`, `12h`, "
        "`30m`, `2w`, or a number of seconds. Give `horizon_versions`, this, or both.",
    )

    _whole = field_validator("snapshot_every", "horizon_versions", mode="before")(_whole_number)
    _whole_age = field_validator("horizon_age", mode="before")(_whole_or_text)


class PolicyOut(Schema):
    kind: str
    snapshot_every: int | None = Field(None, description="selective only.")
    horizon_versions: int | None = Field(None, description="ephemeral only.")
    horizon_age: str | None = Field(None, description="ephemeral only, as `90d`.")


class FootprintOut(Schema):
    """The bytes the stream's rows take as stored."""

    events: int
    versions: int = Field(description="Version rows with their parent links.")
    states: int
    total: int


class RetentionOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pricing",
                    "policy": POLICY_EXAMPLE,
                    "description": "ephemeral: keeps the newest 1000 versions and versions younger "
                    "than 90d",
                    "footprint": {"events": 5120, "versions": 2048, "states": 3072, "total": 10240},
                }
            ]
        }
    )

    stream: str
    policy: PolicyOut
    description: str = Field(description="The policy in words.")
    footprint: FootprintOut


class RunOut(Schema):
    first: int
    last: int
    versions: int


class ProtectedOut(Schema):
    version: int
    reason: str = Field(
        description="Why it is never released: a branch head, a merge base, a review, a replay."
    )


class PlanOut(Schema):
    """What a compaction now would do; computing it writes nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stream": "pricing",
                    "policy": POLICY_EXAMPLE,
                    "upto": 14,
                    "cutoff": "2026-09-07T04:00:00.000000+00:00",
                    "snapshots_stored": 1,
                    "states_dropped": 9,
                    "versions_released": 10,
                    "bytes_released": 4096,
                    "bytes_uncounted": None,
                    "runs": [{"first": 1, "last": 10, "versions": 10}],
                    "runs_total": 1,
                    "protected": [{"version": 12, "reason": "head of branch sale"}],
                    "protected_total": 1,
                }
            ]
        }
    )

    stream: str
    policy: PolicyOut
    upto: int = Field(description="The newest version considered.")
    cutoff: str | None = Field(
        description="ephemeral with an age: versions made before this time are beyond the horizon."
    )
    snapshots_stored: int
    states_dropped: int
    versions_released: int
    bytes_released: int = Field(
        description="An estimate of what the stream's rows lose (the compaction's bytes "
        "before minus after), within about 10%."
    )
    bytes_uncounted: str | None = Field(
        None, description="What the estimate leaves out (snapshots stored first), if anything."
    )
    runs: list[RunOut] = Field(description="The chains released, oldest first; at most 200.")
    runs_total: int
    protected: list[ProtectedOut] = Field(
        description="Versions beyond the horizon that stay; at most 200."
    )
    protected_total: int


COMPACTION_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "stream": "pricing",
    "status": "done",
    "policy": POLICY_EXAMPLE,
    "upto": 14,
    "cutoff": "2026-09-07T04:00:00.000000+00:00",
    "requested_by": "alice",
    "requested_at": "2026-12-06T04:00:00.000000+00:00",
    "started_at": "2026-12-06T04:00:01.000000+00:00",
    "finished_at": "2026-12-06T04:00:02.000000+00:00",
    "phase": "finish",
    "snapshots_stored": 1,
    "states_released": 9,
    "payloads_released": 10,
    "versions_released": 10,
    "runs": 1,
    "bytes_before": 10240,
    "bytes_after": 6144,
    "error": None,
    "record": EVENT_ID,
}


class CompactionOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [COMPACTION_EXAMPLE]})

    id: int
    stream: str
    status: Literal["pending", "running", "done", "failed"]
    policy: PolicyOut = Field(
        description="The policy the compaction applies, pinned when it was requested."
    )
    upto: int
    cutoff: str | None
    requested_by: str
    requested_at: str | None
    started_at: str | None
    finished_at: str | None
    phase: str = Field(description="`snapshots`, `release` or `finish`.")
    snapshots_stored: int
    states_released: int
    payloads_released: int
    versions_released: int
    runs: int
    bytes_before: int | None
    bytes_after: int | None
    error: str | None
    record: UUID | None = Field(
        description="The `retention.compacted` event in the project's "
        "audit stream `_audit`, once done."
    )


class CompactionPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [COMPACTION_EXAMPLE], "next": None}]}
    )

    items: list[CompactionOut]
    next: str | None


# -- erasure (personal data sealed per data subject) ------------------------------------

SUBJECT_MAX = 200
REASON_MAX = 1000


class PersonalIn(StrictSchema):
    """Whether a stream stores its payloads encrypted per data subject."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"subject_member": "customer"}]}
    )

    subject_member: str | None = Field(
        description="The payload member that names each event's data subject; every other "
        "top-level member is then stored encrypted with that subject's key. `null` stops "
        "encrypting (events already recorded keep their form).",
        min_length=1,
        max_length=NAME_MAX,
        pattern=TEXT_PATTERN,
        examples=["customer"],
    )


class PersonalOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"stream": "customers", "subject_member": "customer"}]}
    )

    stream: str
    subject_member: str | None = Field(
        description="The member naming the data subject, or null when payloads are stored "
        "as they are."
    )


class ErasureIn(StrictSchema):
    """Erase a data subject: destroy its key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"subject": "customer-42", "reason": "GDPR Art. 17 request #118"}]
        },
    )

    subject: str = Field(
        min_length=1,
        max_length=SUBJECT_MAX,
        pattern=TEXT_PATTERN,
        description="The data subject's id, as the events name it.",
        examples=["customer-42"],
    )
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX,
        pattern=TEXT_PATTERN,
        description="Why; kept in the project's audit stream (write no personal data here).",
        examples=["GDPR Art. 17 request #118"],
    )


AFFECTED_EXAMPLE: dict[str, Any] = {
    "stream": "customers",
    "seq": 7,
    "id": EVENT_ID,
    "type": "customer.registered",
}


class AffectedEventOut(Schema):
    """An event holding sealed values of the subject."""

    stream: str
    seq: int
    id: UUID
    type: str


class ErasurePreviewOut(Schema):
    """What erasing the subject would redact; computing it changes nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject": "customer-42",
                    "erased": False,
                    "events": [AFFECTED_EXAMPLE],
                }
            ]
        }
    )

    subject: str
    erased: bool = Field(description="Whether the subject was erased already.")
    events: list[AffectedEventOut]


class ErasureOut(Schema):
    """The report of an erasure."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "project": "acme",
                    "subject": "customer-42",
                    "erased_at": "2026-12-06T04:20:00.000000+00:00",
                    "erased_by": "alice",
                    "reason": "GDPR Art. 17 request #118",
                    "audit_event": CAUSE_ID,
                    "events": [AFFECTED_EXAMPLE],
                }
            ]
        }
    )

    project: str
    subject: str
    erased_at: str
    erased_by: str
    reason: str
    audit_event: UUID = Field(description="The `subject.erased` event in the audit stream.")
    events: list[AffectedEventOut] = Field(
        description="The events whose personal values now read `[erased]`."
    )


class SubjectQuery(Schema):
    subject: str = Field(
        min_length=1,
        max_length=SUBJECT_MAX,
        pattern=TEXT_PATTERN,
        description="The data subject's id.",
    )

"""Revisions, tags, bisect and revert over HTTP.

Every version parameter of the API reads git's revision syntax (``main~3``, ``v12^2``,
a tag); this module adds what only revisions have: ranges (``A..B``), tags (create and
list, never move), bisect (a JSON Pointer and the value expected there: the API runs
no code, so no Python predicate) and revert (plan or append the inverse event).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import NinjaAPI, Query, Router, Status
from pydantic import ConfigDict, Field

from api.access import stream_for, token_of
from api.errors import (
    READ_ERRORS,
    REVISION_ERRORS,
    REVISION_STATE_ERRORS,
    WRITE_ERRORS,
    error_response,
    simple_handler,
)
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page, offset_page
from api.schemas import (
    STORED_JSON_MARK,
    BetweenOut,
    Error,
    NamePageQuery,
    PairCursor,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
    StrictSchema,
)
from continust.audit.tags import TagExists, create_tag
from continust.core.errors import AmbiguousName, BadRevision, BisectRefused, RevertConflict
from continust.core.parsing import (
    NAME_MAX,
    NAME_PATTERN,
    RANGE_MAX,
    TAG_PATTERN,
    TEXT_PATTERN,
    parse_cursor,
)
from continust.graph.cache import graph_for
from continust.log.lookup import resolve_range, resolve_version
from continust.log.revert import append_revert, plan_revert
from continust.models import Tag, Version
from continust.read.bisect import PointerEquals, bisect_stream

router = Router(tags=["revisions, tags, bisect and revert"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"
# A JSON Pointer (RFC 6901): empty (the whole state), or /-separated tokens where ~ is
# ~0 or ~1.
POINTER_PATTERN = r"^(/([^/~\u0000]|~[01])*)*$"
MAX_GOOD = 20
MAX_SKIP = 100
_ANY_STORED_JSON: dict[str, Any] = {"anyOf": [STORED_JSON_MARK]}

RangeText = Annotated[
    str,
    Field(
        min_length=4,
        max_length=RANGE_MAX,
        pattern=TEXT_PATTERN,
        description="Two revisions joined by `..`: the versions B reaches and A does not.",
        examples=["main~10..main", "v1.0..feature"],
    ),
]
TagName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=TAG_PATTERN,
        description="A tag's name: no white space, none of `~`, `^`, `:`. A name revisions "
        "would read otherwise (holding `..`, or an id: `12`, `v12`) is a 422 "
        "`ambiguous_name`; a name taken by a tag or a branch of the stream a 409.",
        examples=["release-1.0"],
    ),
]
BranchName = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN, examples=["main"]),
]


class RangeQuery(Schema):
    range: RangeText
    after: PairCursor | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class TagIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "release-1.0", "version": "main~2"}]},
    )

    name: TagName
    version: Ref = Field(description="The revision to tag.", examples=["main~2"])


TAG_EXAMPLE: dict[str, Any] = {
    "name": "release-1.0",
    "version": 12,
    "actor": "alice",
    "created_at": "2026-12-06T04:30:00Z",
    "event": "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f",
}
REVERT_EXAMPLE: dict[str, Any] = {
    "reverts": 13,
    "branch": "main",
    "head": 14,
    "type": "continust.revert",
    "payload": {"basic": 10},
    "changes": [{"op": "replace", "path": "/basic", "old": 9, "new": 10}],
    "version": 15,
}


class TagOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [TAG_EXAMPLE]})

    name: str
    version: int
    actor: str
    created_at: datetime
    event: str = Field(description="The id of the `tag.created` event of the audit stream.")


class TagPage(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [TAG_EXAMPLE], "next": None}]}
    )

    items: list[TagOut]
    next: str | None


class BisectIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "good": ["v1.0"],
                    "bad": "main",
                    "skip": ["v42"],
                    "pointer": "/limits/max",
                    "expect": 10,
                }
            ]
        },
    )

    good: list[Ref] = Field(
        min_length=1,
        max_length=MAX_GOOD,
        description="Revisions where the property holds.",
        examples=[["v1.0"]],
    )
    bad: Ref = Field(description="A revision where it does not hold.", examples=["main"])
    skip: list[Ref] = Field(
        default_factory=list,
        max_length=MAX_SKIP,
        description="Revisions not to test, as `git bisect skip`. Versions whose state "
        "compaction released are skipped without being named.",
        examples=[["v42"]],
    )
    pointer: str = Field(
        max_length=1000,
        pattern=POINTER_PATTERN,
        description="A JSON Pointer into the state (`/limits/max`); empty: the whole state.",
        examples=["/limits/max"],
    )
    expect: Any = Field(
        description="The JSON value the property expects at `pointer` (absent: it does not hold).",
        examples=[10],
        json_schema_extra=_ANY_STORED_JSON,
    )


class Tested(Schema):
    version: int
    good: bool


class Skipped(Schema):
    version: int
    why: str = Field(examples=["state released by compaction", "skipped as asked"])


class BisectOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "first_bad": 43,
                    "event": "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e",
                    "type": "limits.changed",
                    "branch": "main",
                    "could_be": [43],
                    "states_read": 7,
                    "candidates": 40,
                    "tested": [
                        {"version": 30, "good": True},
                        {"version": 45, "good": False},
                        {"version": 43, "good": False},
                    ],
                    "skipped": [{"version": 42, "why": "skipped as asked"}],
                    "property": "/limits/max == 10",
                }
            ]
        }
    )

    first_bad: int | None = Field(
        description="The first version where the property broke; null when skipped "
        "versions leave more than one (see `could_be`)."
    )
    event: str | None = Field(description="The first bad version's event (null as above).")
    type: str | None
    branch: str | None
    could_be: list[int] = Field(
        description="The versions the first bad version is among: `[first_bad]` when it "
        "was found, more when skipped versions could not be tested."
    )
    states_read: int = Field(description="States read, the two given ends included.")
    candidates: int = Field(description="Versions bad reaches and no good one reaches.")
    tested: list[Tested]
    skipped: list[Skipped]
    property: str


class RevertIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"version": "main~1", "branch": "main", "dry_run": False}]},
    )

    version: Ref = Field(description="The revision to revert.", examples=["main~1"])
    branch: BranchName | None = Field(
        None, description="The branch to append to; the version's own by default."
    )
    dry_run: bool = Field(False, description="Answer the plan; append nothing.")


class RevertOut(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [REVERT_EXAMPLE]})

    reverts: int
    branch: str
    head: int = Field(description="The branch head the revert applies to.")
    type: str
    payload: dict[str, Any]
    changes: list[dict[str, Any]] = Field(description="The changes to the head's state.")
    version: int | None = Field(description="The version appended; null for a dry run.")


REVERT_ERRORS: dict[int, type] = {**WRITE_ERRORS, 410: Error}


@router.get(STREAM + "/revisions/range", response={200: BetweenOut, **REVISION_ERRORS})
def revision_range(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[RangeQuery]
) -> dict[str, Any]:
    """The versions a range `A..B` names (`git rev-list A..B`): those B reaches and A does
    not, newest first, and their count. 422 `bad_revision` names the end that did not
    resolve."""
    stream = stream_for(request, slug, name)
    a, b = resolve_range(stream, query.range)
    start = 0
    if query.after is not None:
        pinned = parse_cursor(query.after, 3)
        a, b = _pinned(stream, pinned[0]), _pinned(stream, pinned[1])
        start = pinned[2]
    items = graph_for(stream).between(a.pk, b.pk)
    page, next_cursor = offset_page(items, start, query.limit, (a.pk, b.pk))
    return {"a": a.pk, "b": b.pk, "count": len(items), "items": page, "next": next_cursor}


def _pinned(stream: Any, version_id: int) -> Version:
    version = Version.objects.filter(stream=stream, pk=version_id).first()
    if version is None:
        raise BadRevision(
            f"stream {stream.name} has no version {version_id}, which the cursor names"
        )
    return version


def _tag_record(tag: Tag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "version": tag.version_id,
        "actor": tag.actor,
        "created_at": tag.created_at,
        "event": str(tag.event.id),
    }


@router.get(STREAM + "/tags", response={200: TagPage, **READ_ERRORS})
def list_tags(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[NamePageQuery]
) -> dict[str, Any]:
    """List the stream's tags by name."""
    stream = stream_for(request, slug, name)
    rows, next_cursor = keyset_page(
        Tag.objects.filter(stream=stream).select_related("event"),
        "name",
        page.after,
        page.limit,
        str,
    )
    return {"items": [_tag_record(t) for t in rows], "next": next_cursor}


@router.post(STREAM + "/tags", response={201: TagOut, **WRITE_ERRORS})
def post_tag(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: TagIn
) -> Status[dict[str, Any]]:
    """Tag a version: an immutable name, unique in the stream, recorded as a `tag.created`
    event of the project's audit stream (actor: the token's user). A tag never moves and
    is never deleted: a name taken is 409 `tag_exists`. Needs a write token and the
    editor role."""
    stream = stream_for(request, slug, name, write=True)
    version = resolve_version(stream, body.version)
    actor = token_of(request).user.get_username()
    return Status(201, _tag_record(create_tag(stream, body.name, version, actor=actor)))


@router.post(STREAM + "/bisect", response={200: BisectOut, **REVISION_STATE_ERRORS})
def bisect(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: BisectIn
) -> dict[str, Any]:
    """Find the first version where the value at `pointer` stopped being `expect`, as
    `git bisect` does: among the versions `bad` reaches and no `good` reaches, in
    O(log n) state reads on linear history. Versions in `skip`, and those whose state
    compaction released, are not tested: the answer is then the versions the first bad
    one is among (`could_be`). Reads only; 422 `bisect_refused` when a good version does
    not hold, the bad one does, or an end's state was released. Python predicates are
    the command line's only (`manage.py bisect --run`): the API runs no code."""
    stream = stream_for(request, slug, name)
    prop = PointerEquals(body.pointer, body.expect)
    good = [resolve_version(stream, ref) for ref in body.good]
    skip = [resolve_version(stream, ref) for ref in body.skip]
    bad = resolve_version(stream, body.bad)
    return bisect_stream(stream, good, bad, prop, skip).as_dict()


@router.post(STREAM + "/reverts", response={200: RevertOut, 201: RevertOut, **REVERT_ERRORS})
def post_revert(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: RevertIn
) -> Status[dict[str, Any]]:
    """Revert a version: append to the branch one event that undoes what the version
    changed (from its first parent), caused by the version's event. 422
    `revert_conflict` (with `paths`) when later versions changed the same paths; 409
    when the branch moved meanwhile. `dry_run` answers 200 with the plan. Needs a write
    token and the editor role."""
    stream = stream_for(request, slug, name, write=True)
    version = resolve_version(stream, body.version)
    plan = plan_revert(stream, version, body.branch)
    answer: dict[str, Any] = {**plan.as_dict(), "version": None}
    if body.dry_run:
        return Status(200, answer)
    actor = token_of(request).user.get_username()
    made = append_revert(stream, plan, actor=actor).versions[0]
    return Status(201, {**answer, "version": made.pk})


def _on_revert_conflict(request: HttpRequest, exc: Any) -> Any:
    return error_response(422, "revert_conflict", str(exc), paths=exc.paths)


def install(api: NinjaAPI) -> None:
    """Register this module's errors: bad revisions, refused bisections and reverts, and
    taken tag names."""
    api.add_exception_handler(BadRevision, simple_handler(422, "bad_revision"))
    api.add_exception_handler(AmbiguousName, simple_handler(422, "ambiguous_name"))
    api.add_exception_handler(BisectRefused, simple_handler(422, "bisect_refused"))
    api.add_exception_handler(RevertConflict, _on_revert_conflict)
    api.add_exception_handler(TagExists, simple_handler(409, "tag_exists"))

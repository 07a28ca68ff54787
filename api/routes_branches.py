"""Branches over HTTP: fork a branch at a version, preview a merge and merge.

A merge's conflicting paths are resolved as the CLI's ``--resolve PATH=JSON`` and the
explorer's *Merge branches* page resolve them: a JSON value per conflicting JSON
Pointer. ``GET merge-preview`` lists the conflicts (base, ours, theirs) and writes
nothing; ``POST merges`` with every conflict resolved writes the merge, or answers
409 ``merge_conflict`` listing those still open, and writes nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status
from pydantic import ConfigDict, Field, field_validator

from api.access import stream_for, token_of, version_records
from api.errors import STATE_ERRORS, WRITE_ERRORS, conflict_record
from api.schemas import (
    PAYLOAD_SCHEMA,
    VERSION_EXAMPLE,
    BranchOut,
    ChangeOut,
    ConflictOut,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
    StrictSchema,
    VersionOut,
    _whole_number,
)
from continust.core.errors import NotFound, NothingToMerge
from continust.core.parsing import BIGINT_MAX, NAME_MAX, NAME_PATTERN, TAG_PATTERN
from continust.documents import diff as diffs
from continust.log.lookup import resolve_version
from continust.log.store import UNSET, fork, merge, plan_merge
from continust.log.subjects import readable_state, reveal
from continust.models import Branch, Stream, Version

router = Router(tags=["branches"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"
BranchName = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
NewBranchName = Field(
    min_length=1,
    max_length=NAME_MAX,
    pattern=TAG_PATTERN,
    description="The new branch's name: no white space, none of `~`, `^`, `:`. A name "
    "revisions would read otherwise (holding `..`, or an id: `12`, `v12`) is a 422 "
    "`ambiguous_name`.",
)
MERGE_ERRORS: dict[int, type] = {**WRITE_ERRORS, 410: STATE_ERRORS[410]}


class ForkIn(StrictSchema):
    """A new branch and the version it starts at."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "sale", "at": "v12"}]}
    )

    name: str = NewBranchName
    at: Ref


class MergeIn(StrictSchema):
    """Merge branch `from` into branch `into`, resolving each conflicting path."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"from": "sale", "into": "main", "resolutions": {"/pro": 27}, "expected_head": 14}
            ]
        },
    )

    source: str = Field(alias="from", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    into: str = Field("main", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    resolutions: dict[str, Any] = Field(
        default_factory=dict,
        description="The value each conflicting path (a JSON Pointer) takes in the merge; "
        "every conflict must be resolved, and only conflicting paths may be named.",
        json_schema_extra=PAYLOAD_SCHEMA,
    )
    expected_head: int | None = Field(
        None,
        ge=0,
        le=BIGINT_MAX,
        description="The version id `into` must point at (409 `stale_head` otherwise).",
    )

    _whole = field_validator("expected_head", mode="before")(_whole_number)


class MergeQuery(Schema):
    source: str = Field(alias="from", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    into: str = Field("main", min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)


class MergePreviewOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "sale",
                    "into": "main",
                    "ours": 14,
                    "theirs": 13,
                    "up_to_date": False,
                    "merge_bases": [11],
                    "conflicts": [
                        {"path": "/pro", "base": 29, "ours": 31, "theirs": 25, "absent": []}
                    ],
                    "changes": [],
                }
            ]
        },
        populate_by_name=True,
    )

    source: str = Field(alias="from")
    into: str
    ours: int = Field(description="The head of `into`: give it as `expected_head` to merge.")
    theirs: int = Field(description="The head of `from`.")
    up_to_date: bool = Field(description="True when `from` is already in `into`.")
    merge_bases: list[int]
    conflicts: list[ConflictOut] = Field(description="Each must be resolved to merge.")
    changes: list[ChangeOut] = Field(
        description="What the merge would change in `into`'s state (conflicts as merged "
        "without resolution), at most 1000."
    )


class MergeOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "into": "main",
                    "version": {
                        **VERSION_EXAMPLE,
                        "id": 15,
                        "generation": 15,
                        "parents": [14, 13],
                        "event": "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918",
                        "event_type": "continust.merge",
                    },
                }
            ]
        }
    )

    into: str
    version: VersionOut


def _heads(stream: Stream, source: str, into: str) -> dict[str, Version]:
    heads = {
        b.name: b.head
        for b in Branch.objects.filter(stream=stream, name__in=[source, into]).select_related(
            "head"
        )
    }
    for name in (source, into):
        if name not in heads:
            raise NotFound(f"stream {stream.name} has no branch {name!r}")
    return heads


@router.post(STREAM + "/forks", response={201: BranchOut, **MERGE_ERRORS})
def fork_branch(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: ForkIn
) -> Status[dict[str, Any]]:
    """Fork: create a branch that starts at any version of the stream (`at`: an id, `v12`,
    a key or a branch name).

    Needs a write-scoped token and the editor role. 409 `already_exists` when the
    stream has a branch of that name; 410 when the version's state was released.
    """
    stream = stream_for(request, slug, name, write=True)
    at = resolve_version(stream, body.at)
    branch = fork(stream, body.name, at, actor=token_of(request).user.get_username())
    return Status(201, {"name": branch.name, "head": at.pk, "created_at": branch.created_at})


@router.get(
    STREAM + "/merge-preview",
    response={200: MergePreviewOut, **STATE_ERRORS},
    by_alias=True,
    exclude_unset=True,
)
def preview_merge(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[MergeQuery]
) -> dict[str, Any]:
    """What merging branch `from` into `into` would give, writing nothing: the merge
    bases, the conflicting paths with their base, ours and theirs values, and the changes
    to `into`'s state. `up_to_date` when `from` is already in `into` (a merge would be a
    422 `nothing_to_merge`)."""
    stream = stream_for(request, slug, name)
    heads = _heads(stream, query.source, query.into)
    try:
        if query.source == query.into:
            raise NothingToMerge("a branch is contained in itself")
        plan = plan_merge(stream, heads[query.into], heads[query.source])
    except NothingToMerge:  # "Already up to date", as git says: nothing would change
        return {
            "from": query.source,
            "into": query.into,
            "ours": heads[query.into].pk,
            "theirs": heads[query.source].pk,
            "up_to_date": True,
            "merge_bases": [heads[query.source].pk],
            "conflicts": [],
            "changes": [],
        }
    changes = diffs.diff(readable_state(heads[query.into]), reveal(stream.project_id, plan.state))
    return {
        "from": query.source,
        "into": query.into,
        "ours": plan.ours.pk,
        "theirs": plan.theirs.pk,
        "up_to_date": False,
        "merge_bases": plan.bases,
        "conflicts": [conflict_record(c) for c in plan.conflicts],
        "changes": [c.to_dict() for c in changes[:1000]],
    }


@router.post(STREAM + "/merges", response={201: MergeOut, **MERGE_ERRORS}, by_alias=True)
def merge_branches(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: MergeIn
) -> Status[dict[str, Any]]:
    """Merge branch `from` into branch `into`: a merge event and a version with two parents.

    Needs a write-scoped token and the editor role. Every conflicting path must be
    resolved in `resolutions`; otherwise 409 `merge_conflict` lists the open ones
    (`conflicts`) and nothing is written. 422 `nothing_to_merge` when `from` is
    already in `into`, `invalid_event` for a resolution of a path without conflict.
    """
    stream = stream_for(request, slug, name, write=True)
    expected = body.expected_head if "expected_head" in body.model_fields_set else UNSET
    version = merge(
        stream,
        body.source,
        body.into,
        actor=token_of(request).user.get_username(),
        resolutions=body.resolutions,
        expected_head=expected,
    )
    return Status(201, {"into": body.into, "version": version_records(stream, [version])[0]})

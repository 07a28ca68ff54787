"""Questions about a stream's version graph, and diffs between two of its versions.

Versions are named by reference (``?a=main&b=v12``). A computed range is paged
by a cursor that pins the versions the first page resolved, so a branch moving
during the walk cannot make it repeat or skip anything.
"""

from __future__ import annotations

import heapq
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router
from pydantic import Field

from api.access import stream_for
from api.errors import REVISION_ERRORS, REVISION_STATE_ERRORS
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, offset_page
from api.schemas import (
    AncestorsCursor,
    AncestorsOut,
    BetweenOut,
    ChangesOut,
    JsonPatchOut,
    MergeBasesOut,
    MergePatchOut,
    PairCursor,
    PathOut,
    Ref,
    Schema,
    SlugPath,
    StreamPath,
)
from continust.core.errors import NotFound
from continust.core.parsing import format_cursor, parse_cursor
from continust.documents.diff import diff, merge_patch, to_json_patch
from continust.graph.cache import graph_for
from continust.log.lookup import resolve_version
from continust.log.subjects import readable_state
from continust.models import Stream, Version

router = Router(tags=["lineage and diffs"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"


class PairQuery(Schema):
    a: Ref
    b: Ref


class PairPageQuery(PairQuery):
    after: PairCursor | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class AncestorsQuery(Schema):
    of: Ref
    after: AncestorsCursor | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class PathQuery(PairQuery):
    limit: int = Field(
        MAX_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many versions on each side."
    )


def _version(stream: Stream, version_id: int) -> Version:
    version = Version.objects.filter(stream=stream, pk=version_id).first()
    if version is None:
        raise NotFound(f"stream {stream.name} has no version {version_id}, which the cursor names")
    return version


def _pair(stream: Stream, query: PairQuery) -> tuple[Version, Version]:
    return resolve_version(stream, query.a), resolve_version(stream, query.b)


def _pinned_pair(stream: Stream, query: PairPageQuery) -> tuple[Version, Version, int]:
    """Return the pair a page is about and where it starts: the cursor's, or the refs'."""
    a, b = _pair(stream, query)  # unknown refs are a 404 on every page
    if query.after is None:
        return a, b, 0
    pinned = parse_cursor(query.after, 3)
    return _version(stream, pinned[0]), _version(stream, pinned[1]), pinned[2]


@router.get(STREAM + "/lineage/merge-bases", response={200: MergeBasesOut, **REVISION_ERRORS})
def merge_bases(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PairQuery]
) -> dict[str, Any]:
    """All best common ancestors of a and b (`git merge-base --all a b`), at most 1000."""
    stream = stream_for(request, slug, name)
    a, b = _pair(stream, query)
    bases = sorted(graph_for(stream).merge_bases(a.pk, b.pk))
    return {"a": a.pk, "b": b.pk, "merge_bases": bases[:MAX_LIMIT]}


@router.get(STREAM + "/lineage/ancestors", response={200: AncestorsOut, **REVISION_ERRORS})
def ancestors(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[AncestorsQuery]
) -> dict[str, Any]:
    """How many versions `of` reaches, itself included (`git rev-list --count`), and a page
    of them, newest (highest id) first."""
    stream = stream_for(request, slug, name)
    version = resolve_version(stream, query.of)
    below: int | None = None
    if query.after is not None:
        pinned = parse_cursor(query.after, 2)
        version, below = _version(stream, pinned[0]), pinned[1]
    reached = graph_for(stream).ancestors(version.pk)
    candidates = reached if below is None else (n for n in reached if n < below)
    page = heapq.nlargest(query.limit + 1, candidates)
    more = len(page) > query.limit
    page = page[: query.limit]
    return {
        "version": version.pk,
        "count": len(reached),
        "items": page,
        "next": format_cursor(version.pk, page[-1]) if more else None,
    }


@router.get(STREAM + "/lineage/between", response={200: BetweenOut, **REVISION_ERRORS})
def between(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PairPageQuery]
) -> dict[str, Any]:
    """The versions b reaches and a does not (`git rev-list b ^a`): their count and a page,
    newest first."""
    stream = stream_for(request, slug, name)
    a, b, start = _pinned_pair(stream, query)
    return _pair_page(a, b, graph_for(stream).between(a.pk, b.pk), start, query.limit)


def _pair_page(a: Any, b: Any, items: list[Any], start: int, limit: int) -> dict[str, Any]:
    """Answer one page of a list computed for the pair (a, b); the cursor pins the pair."""
    page, next_cursor = offset_page(items, start, limit, (a.pk, b.pk))
    return {"a": a.pk, "b": b.pk, "count": len(items), "items": page, "next": next_cursor}


@router.get(STREAM + "/lineage/path", response={200: PathOut, **REVISION_ERRORS})
def path(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PathQuery]
) -> dict[str, Any]:
    """The way from a and from b down to their merge base, each side from its version down."""
    stream = stream_for(request, slug, name)
    a, b = _pair(stream, query)
    found = graph_for(stream).path(a.pk, b.pk)
    if found is None:
        return {"a": a.pk, "b": b.pk, "base": None, "from_a": [], "from_b": [], "truncated": False}
    limit = query.limit
    return {
        "a": a.pk,
        "b": b.pk,
        "base": found.base,
        "from_a": list(found.from_a[:limit]),
        "from_b": list(found.from_b[:limit]),
        "truncated": len(found.from_a) > limit or len(found.from_b) > limit,
    }


@router.get(
    STREAM + "/diff/changes",
    response={200: ChangesOut, **REVISION_STATE_ERRORS},
    by_alias=True,
    exclude_unset=True,
)
def diff_changes(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PairPageQuery]
) -> dict[str, Any]:
    """The structural diff from a's state to b's: changes that, applied in order, turn one
    into the other. `old` or `new` is left out where there is no value (an add, a remove)."""
    stream = stream_for(request, slug, name)
    a, b, start = _pinned_pair(stream, query)
    changes = [c.to_dict() for c in diff(readable_state(a), readable_state(b))]
    return _pair_page(a, b, changes, start, query.limit)


@router.get(STREAM + "/diff/json-patch", response={200: JsonPatchOut, **REVISION_STATE_ERRORS})
def diff_json_patch(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PairPageQuery]
) -> dict[str, Any]:
    """The diff as an RFC 6902 JSON Patch, paged: the pages applied in order turn a's state
    into b's."""
    stream = stream_for(request, slug, name)
    a, b, start = _pinned_pair(stream, query)
    operations = to_json_patch(readable_state(a), readable_state(b))
    return _pair_page(a, b, operations, start, query.limit)


@router.get(STREAM + "/diff/merge-patch", response={200: MergePatchOut, **REVISION_STATE_ERRORS})
def diff_merge_patch(
    request: HttpRequest, slug: SlugPath, name: StreamPath, query: Query[PairQuery]
) -> dict[str, Any]:
    """The diff as one RFC 7396 merge patch (a document, as large as the states at most).

    A merge patch reads null as "remove", so it cannot set a value to null: when b's
    state has a null the patch would have to say, the answer is 422
    `null_not_expressible` naming those `paths` (the JSON Patch diff can say it)."""
    stream = stream_for(request, slug, name)
    a, b = _pair(stream, query)
    return {"a": a.pk, "b": b.pk, "merge_patch": merge_patch(readable_state(a), readable_state(b))}

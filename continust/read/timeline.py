"""One page of a stream's versions: the one read of a timeline page.

The explorer draws it (newest first, each released run folded into its first
version) and the HTTP API lists it (oldest first, every version). A page costs the
same few queries whatever the stream's length: the versions by the ``(stream, -id)``
index with their events (payloads left out), their parents, the branch heads and
the released runs on the page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet

from continust.graph.parents import parents_of_many
from continust.models import (
    Branch,
    Event,
    ReleasedRun,
    ReleasedVersion,
    Stream,
    Version,
)

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
CHOICES = 50  # at most this many event types and actors offered as filter choices


@dataclass(frozen=True)
class Filters:
    """What a page is narrowed to; empty values narrow nothing."""

    branch: str = ""
    type: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.branch or self.type or self.actor or self.since or self.until)


@dataclass(frozen=True)
class TimelineRow:
    """A version on the page, its parents (first parent first), the branches it heads,
    and the released run it stands for (on a run's first version only)."""

    version: Version
    parents: tuple[int, ...]
    heads: tuple[str, ...]
    released: ReleasedRun | None = None

    @property
    def event(self) -> Event:
        return self.version.event


@dataclass(frozen=True)
class TimelinePage:
    """The rows, and the cursor of the next page (``None`` at the end)."""

    rows: list[TimelineRow]
    next: int | None
    heads: dict[int, list[str]] = field(default_factory=dict)


def timeline_page(
    stream: Stream,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
    filters: Filters | None = None,
    oldest_first: bool = False,
    fold_released: bool = True,
) -> TimelinePage:
    """Return a page of the stream's versions.

    Newest first by default, the versions older than ``before`` (a version id); with
    ``oldest_first``, the versions newer than ``after``. ``fold_released`` leaves out
    the versions drawn inside their released run's node, all but each run's first.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE_SIZE} versions, not {limit}")
    query = versions_of(stream, filters or Filters())
    if before is not None:
        query = query.filter(id__lt=before)
    if after is not None:
        query = query.filter(id__gt=after)
    if fold_released:
        query = query.exclude(Exists(_folded().filter(version=OuterRef("pk"))))
    found = list(query.order_by("id" if oldest_first else "-id")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    ids = [version.pk for version in found]
    parents = parents_of_many(found)
    heads = branch_heads(stream)
    runs = _runs(ids) if fold_released else {}
    for version in found:
        version.stream = stream
    rows = [
        TimelineRow(
            version,
            tuple(parents.get(version.pk, ())),
            tuple(heads.get(version.pk, ())),
            runs.get(version.pk),
        )
        for version in found
    ]
    return TimelinePage(rows, found[-1].pk if more else None, heads)


def versions_of(stream: Stream, filters: Filters) -> QuerySet[Version, Version]:
    """The stream's versions with their events (no payloads), narrowed by ``filters``."""
    query = (
        Version.objects.filter(stream=stream)
        .select_related("event")
        .defer("event__payload", "event__prev_hash")
    )
    if filters.branch:
        query = query.filter(branch=filters.branch)
    if filters.type:
        query = query.filter(event__type=filters.type)
    if filters.actor:
        query = query.filter(event__actor=filters.actor)
    if filters.since:
        query = query.filter(event__timestamp__gte=filters.since)
    if filters.until:
        query = query.filter(event__timestamp__lt=filters.until)
    return query


def branch_heads(stream: Stream) -> dict[int, list[str]]:
    """The names of the branches each head version heads, by version id."""
    heads: dict[int, list[str]] = defaultdict(list)
    for name, head in (
        Branch.objects.filter(stream=stream).order_by("name").values_list("name", "head_id")
    ):
        heads[head].append(name)
    return heads


def newest_id(stream: Stream) -> int | None:
    """The id of the stream's newest version, none for an empty stream."""
    return (
        Version.objects.filter(stream=stream).order_by("-id").values_list("id", flat=True).first()
    )


def filter_choices(stream: Stream) -> tuple[list[str], list[str]]:
    """The event types and actors the stream's newest events use, to offer as filters.

    Read from the newest events only (at most a few thousand), so the cost does not
    grow with the stream.
    """
    recent = Event.objects.filter(stream=stream).order_by("-seq").values_list("type", "actor")
    types: dict[str, None] = {}
    actors: dict[str, None] = {}
    for event_type, actor in recent[:2000]:
        if len(types) < CHOICES:
            types.setdefault(event_type)
        if actor and len(actors) < CHOICES:
            actors.setdefault(actor)
    return sorted(types), sorted(actors)


def _folded() -> QuerySet[ReleasedVersion, Any]:
    """The versions drawn inside their released run's node: all but each run's first."""
    return ReleasedVersion.objects.exclude(run__first_id=F("version"))


def _runs(ids: list[int]) -> dict[int, ReleasedRun]:
    """The released runs whose first version is on the page, by that version's id."""
    if not ids:
        return {}
    return {run.first_id: run for run in ReleasedRun.objects.filter(first_id__in=ids)}

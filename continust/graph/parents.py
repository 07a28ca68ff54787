"""The one reader of parent links: a version's parents, in order, first parent first.

Every read of ``VersionParent`` rows goes through here, whether for one version,
a set of them, a whole stream (or what it grew after a known version) or a range
of version ids; each is one query ordered by child and index, the unique index on
(child, index) serving lookups by child.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from continust.models import Version, VersionParent

CHUNK = 5000


def parents_of(version: Version | int) -> list[int]:
    """Return the ids of a version's parents, first parent first (none: a root)."""
    return list(
        VersionParent.objects.filter(child_id=_id(version))
        .order_by("index")
        .values_list("parent_id", flat=True)
    )


def parents_of_many(versions: Iterable[Version | int]) -> dict[int, list[int]]:
    """Return each version's parent ids, first parent first; a root maps to []."""
    ids = [_id(v) for v in versions]
    found: dict[int, list[int]] = {vid: [] for vid in ids}
    for child, parent in _links(child_id__in=ids):
        found[child].append(parent)
    return found


def parents_in_stream(stream_id: int, *, after: int = 0) -> dict[int, list[int]]:
    """Return the parent ids of the stream's versions (those after version ``after``
    only, when given) that have parents; roots are left out."""
    found: dict[int, list[int]] = {}
    where: dict[str, Any] = {"child__stream_id": stream_id}
    if after:
        where["child_id__gt"] = after
    for child, parent in _links(**where):
        found.setdefault(child, []).append(parent)
    return found


def parents_in_range(low: int, high: int) -> dict[int, tuple[int, ...]]:
    """Return the parents of the versions whose ids are in [low, high], of any stream
    (by child id alone: the unique index), roots left out."""
    found: dict[int, tuple[int, ...]] = {}
    for child, parent in _links(child_id__gte=low, child_id__lte=high):
        found[child] = found[child] + (parent,) if child in found else (parent,)
    return found


def _links(**where: Any) -> Iterator[tuple[int, int]]:
    rows = (
        VersionParent.objects.filter(**where)
        .order_by("child_id", "index")
        .values_list("child_id", "parent_id")
    )
    return rows.iterator(chunk_size=CHUNK)


def _id(version: Version | int) -> int:
    return version if isinstance(version, int) else version.pk

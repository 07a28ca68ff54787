"""The one reader of parent links: a version's parents, in order, first parent first.

A version's first parent is a column of its row (``Version.first_parent``: the only parent
of every version but a merge, none for a root); a merge's second and later parents are
``VersionParent`` rows, with their index (1, 2, …). Every read of either goes through
here, whether for one version, a set of them, a whole stream (or what it grew after a
known version), a range of version ids or a version's children. A linear stream is read
from its versions alone; the link rows, few, are read by child (their unique
(child, index) index) or by parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from continust.models import Version, VersionParent

CHUNK = 5000


def parents_of(version: Version | int) -> list[int]:
    """Return the ids of a version's parents, first parent first (none: a root)."""
    if isinstance(version, Version) and "first_parent_id" in version.__dict__:
        first = version.first_parent_id
    else:
        first = (
            Version.objects.filter(pk=_id(version))
            .values_list("first_parent_id", flat=True)
            .first()
        )
    if first is None:
        return []
    return [
        first,
        *VersionParent.objects.filter(child_id=_id(version))
        .order_by("index")
        .values_list("parent_id", flat=True),
    ]


def parents_of_many(versions: Iterable[Version | int]) -> dict[int, list[int]]:
    """Return each version's parent ids, first parent first; a root maps to []."""
    ids = [_id(v) for v in versions]
    found: dict[int, list[int]] = {vid: [] for vid in ids}
    firsts = Version.objects.filter(pk__in=ids, first_parent__isnull=False)
    _gather(found, firsts.values_list("id", "first_parent_id"), _more(child_id__in=ids))
    return found


def first_parents_of(versions: Iterable[int]) -> dict[int, int]:
    """Return the first parent of each of the versions that has one (roots left out)."""
    return dict(
        Version.objects.filter(pk__in=list(versions), first_parent__isnull=False).values_list(
            "id", "first_parent_id"
        )
    )


def parents_in_stream(stream_id: int, *, after: int = 0) -> dict[int, list[int]]:
    """Return the parent ids of the stream's versions (those after version ``after``
    only, when given) that have parents; roots are left out."""
    found: dict[int, list[int]] = {}
    firsts = Version.objects.filter(
        stream_id=stream_id, id__gt=after, first_parent__isnull=False
    ).order_by("id")
    more: dict[str, Any] = {"child__stream_id": stream_id}
    if after:
        more["child_id__gt"] = after
    _gather(
        found, firsts.values_list("id", "first_parent_id").iterator(chunk_size=CHUNK), _more(**more)
    )
    return found


def parents_after(stream_id: int, *, after: int, limit: int) -> list[tuple[int, list[int]]]:
    """Return the stream's next ``limit`` versions after version ``after``, in id order,
    each with its parent ids, first parent first (a root with none)."""
    rows = list(
        Version.objects.filter(stream_id=stream_id, id__gt=after)
        .order_by("id")
        .values_list("id", "first_parent_id")[:limit]
    )
    if not rows:
        return []
    found: dict[int, list[int]] = {vid: [] for vid, _ in rows}
    _gather(
        found,
        ((vid, parent) for vid, parent in rows if parent is not None),
        _more(child_id__gte=rows[0][0], child_id__lte=rows[-1][0], child__stream_id=stream_id),
    )
    return list(found.items())


def parents_in_range(low: int, high: int) -> dict[int, tuple[int, ...]]:
    """Return the parents of the versions whose ids are in [low, high], of any stream
    (by id alone: the versions' key and the links' unique index), roots left out."""
    found: dict[int, list[int]] = {}
    firsts = Version.objects.filter(id__gte=low, id__lte=high, first_parent__isnull=False)
    _gather(
        found,
        firsts.order_by("id").values_list("id", "first_parent_id").iterator(chunk_size=CHUNK),
        _more(child_id__gte=low, child_id__lte=high),
    )
    return {child: tuple(parents) for child, parents in found.items()}


def children_of(version: Version | int) -> list[int]:
    """Return the ids of the versions that have ``version`` as a parent, in id order."""
    vid = _id(version)
    # Unordered parts (SQLite refuses an ORDER BY inside a UNION), sorted here.
    firsts = Version.objects.filter(first_parent_id=vid).order_by().values_list("id", flat=True)
    more = VersionParent.objects.filter(parent_id=vid).order_by().values_list("child_id", flat=True)
    return sorted(set(firsts.union(more)))  # one query


def children_crossing(stream_id: int, upto: int) -> Iterator[tuple[int, int]]:
    """Yield (child, parent) for each parent link of the stream from a version after
    ``upto`` to one at or before it."""
    yield from Version.objects.filter(
        stream_id=stream_id, id__gt=upto, first_parent_id__lte=upto
    ).values_list("id", "first_parent_id")
    yield from VersionParent.objects.filter(
        child__stream_id=stream_id, child_id__gt=upto, parent_id__lte=upto
    ).values_list("child_id", "parent_id")


def merges_onto(stream_id: int, version: int) -> list[int]:
    """Return the ids of the stream's merges that have ``version`` as a second or later
    parent, in id order."""
    return list(
        VersionParent.objects.filter(child__stream_id=stream_id, parent_id=version)
        .order_by("child_id")
        .values_list("child_id", flat=True)
    )


def _more(**where: Any) -> Iterator[tuple[int, int]]:
    """The link rows (second and later parents) that ``where`` selects, by child and index."""
    rows = (
        VersionParent.objects.filter(**where)
        .order_by("child_id", "index")
        .values_list("child_id", "parent_id")
    )
    return rows.iterator(chunk_size=CHUNK)


def _gather(
    found: dict[int, list[int]],
    firsts: Iterable[tuple[int, int]],
    more: Iterator[tuple[int, int]],
) -> None:
    """Put each version's first parent, then its further ones in index order, in ``found``."""
    for child, parent in firsts:
        found[child] = [parent]
    for child, parent in more:
        found.setdefault(child, []).append(parent)


def _id(version: Version | int) -> int:
    return version if isinstance(version, int) else version.pk

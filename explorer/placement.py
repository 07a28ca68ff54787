"""Keep each stream's stored layout up to date, and read one page of it.

Placing is lazy: the first look at a stream after new versions arrive places
them (in insertion order, under the layout row's lock), so appends stay fast and
the domain knows nothing of the explorer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Min, Q, QuerySet

from continust.models import Stream, Version, VersionParent
from explorer.layout import LaneAllocator, ParentEdge, PlacedVersion
from explorer.models import EdgePlace, StreamLayout, VersionPlace

CHUNK = 5000


def place_new_versions(stream: Stream) -> LaneAllocator:
    """Place every version not placed yet; return the allocator after them."""
    layout = StreamLayout.objects.filter(stream=stream).first()
    if (
        layout is not None
        and not Version.objects.filter(stream=stream, id__gt=layout.last_version_id).exists()
    ):
        return LaneAllocator.from_state(layout.allocator)
    with transaction.atomic():
        layout, _ = StreamLayout.objects.get_or_create(stream=stream)
        layout = StreamLayout.objects.select_for_update().get(pk=layout.pk)
        allocator = (
            LaneAllocator.from_state(layout.allocator) if layout.allocator else LaneAllocator()
        )
        while True:
            ids = list(
                Version.objects.filter(stream=stream, id__gt=layout.last_version_id)
                .order_by("id")
                .values_list("id", flat=True)[:CHUNK]
            )
            if not ids:
                break
            _place_chunk(stream, allocator, ids)
            layout.last_version_id = ids[-1]
        layout.allocator = allocator.state()
        layout.save()
    return allocator


def _place_chunk(stream: Stream, allocator: LaneAllocator, ids: list[int]) -> None:
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in (
        VersionParent.objects.filter(child_id__in=ids)
        .order_by("child_id", "index")
        .values_list("child_id", "parent_id")
    ):
        parents[child].append(parent)
    wanted = {p for ps in parents.values() for p in ps} - set(ids)
    placed = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(version_id__in=wanted).values_list(
            "version_id", "row", "lane"
        )
    }
    places: list[VersionPlace] = []
    edges: list[EdgePlace] = []
    for vid in ids:
        mine = [placed[p] for p in parents.get(vid, [])]
        spot = allocator.place(mine)
        placed[vid] = PlacedVersion(vid, spot.row, spot.lane)
        places.append(VersionPlace(version_id=vid, stream=stream, row=spot.row, lane=spot.lane))
        edges.extend(
            EdgePlace(
                stream=stream,
                child_id=vid,
                parent_id=parent.id,
                index=index,
                lane=lane,
                child_row=spot.row,
                parent_row=parent.row,
                child_lane=spot.lane,
                parent_lane=parent.lane,
            )
            for index, (parent, lane) in enumerate(zip(mine, spot.edge_lanes, strict=True))
        )
    VersionPlace.objects.bulk_create(places, batch_size=1000)
    EdgePlace.objects.bulk_create(edges, batch_size=1000)


@dataclass(frozen=True)
class PageRows:
    """One page of rows, newest first, and every edge that touches it."""

    rows: list[VersionPlace]
    edges: list[ParentEdge]


def page_rows(
    stream: Stream, *, top: int, count: int, folded: QuerySet[Any] | None = None
) -> PageRows:
    """Return rows ``top`` down to ``top - count + 1`` and the edges touching them.

    ``folded`` (a query of version ids) names versions drawn inside another row, the
    released runs' collapsed nodes: the page skips their rows and counts ``count``
    rows without them, so a long released run never makes a page of nothing.
    """
    query = VersionPlace.objects.filter(stream=stream, row__lte=top)
    if folded is not None:
        query = query.exclude(version_id__in=folded)
    rows = list(
        query.order_by("-row")
        .select_related("version__event")
        .defer("version__event__payload")[:count]
    )
    if not rows:
        return PageRows([], [])
    bottom = rows[-1].row
    touching = list(
        EdgePlace.objects.filter(stream=stream, child_row__gte=bottom, child_row__lte=top)
    ) + list(
        EdgePlace.objects.filter(
            stream=stream, parent_row__gte=bottom, parent_row__lte=top, child_row__gt=top
        )
    )
    firsts = (
        EdgePlace.objects.filter(stream=stream, child_row__gt=top)
        .values("lane")
        .annotate(first=Min("child_row"))
    )
    # At most one line per lane passes over the page: each lane's lowest edge above it.
    passing = Q()
    for first in firsts:
        passing |= Q(lane=first["lane"], child_row=first["first"])
    if passing:
        touching.extend(EdgePlace.objects.filter(passing, stream=stream, parent_row__lt=bottom))
    return PageRows(rows, _edges(touching))


def _edges(links: Sequence[EdgePlace]) -> list[ParentEdge]:
    return [
        ParentEdge(
            child=PlacedVersion(link.child_id, link.child_row, link.child_lane),
            parent=PlacedVersion(link.parent_id, link.parent_row, link.parent_lane),
            lane=link.lane,
            index=link.index,
        )
        for link in links
    ]

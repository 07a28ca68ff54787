"""Keep each stream's stored layout up to date, and read one page of it.

Placing is lazy: the first look at a stream after new versions arrive places
them (in insertion order, under the layout row's lock), so appends stay fast and
the domain knows nothing of the explorer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q, Subquery

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


def page_edges(stream: Stream, *, top: int, bottom: int, lanes: int) -> list[ParentEdge]:
    """Return every parent link touching rows ``bottom..top``: those leaving or reaching
    a row of the page, and those passing over it.

    At most one line per lane passes over the page, each lane's lowest link above it:
    one index probe per lane on (stream, lane, child_row), in one query.
    """
    touching = list(
        EdgePlace.objects.filter(stream=stream, child_row__gte=bottom, child_row__lte=top)
    ) + list(
        EdgePlace.objects.filter(
            stream=stream, parent_row__gte=bottom, parent_row__lte=top, child_row__gt=top
        )
    )
    if lanes:
        lowest = Q()
        for lane in range(lanes):
            lowest |= Q(
                pk=Subquery(
                    EdgePlace.objects.filter(stream=stream, lane=lane, child_row__gt=top)
                    .order_by("child_row")
                    .values("pk")[:1]
                )
            )
        touching.extend(EdgePlace.objects.filter(lowest, parent_row__lt=bottom))
    return _edges(touching)


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

"""Keep each stream's stored layout up to date, and read one page of it.

Placing is lazy, so appends stay fast and the domain knows nothing of the explorer:
versions are placed in insertion order, under the layout row's lock, by whoever
looks first. A page places a few new versions itself (`place_for_page`); when more
than `STEP` are waiting (a bulk import, a replay, a long batch of appends) it places
one step, asks for the rest in the background (the ``explorer.place`` task, through
the outbox) and draws the versions placed so far. A version's place never changes,
so a page drawn from what is placed is the same picture as the full one, cut at the
newest placed version.

Placing reads the new versions and their parents in one query per `CHUNK` and
writes their rows with one COPY per table on PostgreSQL (one ``executemany`` on
SQLite): the work is O(versions), in a handful of statements per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from continust.core.database import on_postgresql, relaxed_commit
from continust.graph.parents import parents_after
from continust.jobs import outbox
from continust.models import Stream, Version
from explorer.layout import LaneAllocator, ParentEdge, PlacedVersion
from explorer.models import EdgePlace, StreamLayout, VersionPlace

CHUNK = 20_000  # versions read and written per round of placing
STEP = 500  # at most this many versions a page places before it draws
COUNTED = 10_000  # waiting versions are counted up to this many, so a look stays cheap
TASK = "explorer.place"
RETRY_AFTER = timedelta(minutes=1)  # ask again if versions still wait this long after


@dataclass(frozen=True)
class Progress:
    """How far a stream is placed: the allocator's state after the newest placed
    version, that version's id (0 when none is), and how many versions wait (counted
    up to `COUNTED` + 1: more than `COUNTED` is all a page says)."""

    allocator: LaneAllocator
    last_placed: int
    waiting: int = 0


def place_new_versions(stream: Stream) -> LaneAllocator:
    """Place every version not placed yet, one transaction per `CHUNK`; return the
    allocator after them. The background task and the tests call this."""
    while True:
        progress = _place(stream, limit=CHUNK, wait=True)
        assert progress is not None  # waiting for the lock always gets it
        if not progress.waiting:
            return progress.allocator


def place_for_page(stream: Stream) -> Progress:
    """Place what a page may place before drawing, and tell how far the stream is placed.

    With nothing new this is one read of the layout and one probe of the versions. Up
    to `STEP` new versions are placed here, waiting for the lock as long as it takes;
    beyond that, one step is placed if nobody else is placing (never waiting), and the
    background task is asked for the rest.
    """
    layout = StreamLayout.objects.filter(stream=stream).first()
    last = layout.last_version_id if layout is not None else 0
    new = list(
        Version.objects.filter(stream=stream, id__gt=last)
        .order_by("id")
        .values_list("id", flat=True)[: STEP + 1]
    )
    if not new:  # nothing new: placed already, or a stream with no versions yet
        return Progress(_allocator(layout), last)
    if len(new) <= STEP:
        progress = _place(stream, limit=STEP, wait=True)
        assert progress is not None
        if not progress.waiting:
            return progress
    else:
        progress = _place(stream, limit=STEP, wait=False)
    if progress is None:  # someone else is placing: draw what they committed
        layout = StreamLayout.objects.filter(stream=stream).first()
        last = layout.last_version_id if layout is not None else 0
        progress = Progress(
            _allocator(layout),
            last,
            _waiting(stream, last),
        )
    request_placing(stream)
    return progress


def request_placing(stream: Stream) -> None:
    """Ask the background task to place the stream, unless asked in the last minute."""
    key = f"place:{stream.pk}"
    if outbox.pending(key) is not None:
        return
    sent = outbox.last_sent(key)
    if (
        sent is not None
        and sent.sent_at is not None
        and sent.sent_at > timezone.now() - RETRY_AFTER
    ):
        return
    outbox.enqueue(TASK, [stream.pk], key=key)


def _waiting(stream: Stream, last: int) -> int:
    """How many versions after ``last`` wait to be placed, up to `COUNTED` + 1."""
    return Version.objects.filter(stream=stream, id__gt=last)[: COUNTED + 1].count()


def _allocator(layout: StreamLayout | None) -> LaneAllocator:
    if layout is None or not layout.allocator:
        return LaneAllocator()
    return LaneAllocator.from_state(layout.allocator)


def _place(stream: Stream, *, limit: int, wait: bool) -> Progress | None:
    """Place up to ``limit`` new versions in one transaction; ``None`` when ``wait`` is
    false and another transaction holds the layout."""
    with transaction.atomic():
        StreamLayout.objects.get_or_create(stream=stream)
        layout = (
            StreamLayout.objects.select_for_update(skip_locked=not wait)
            .filter(stream=stream)
            .first()
        )
        if layout is None:
            return None
        allocator = _allocator(layout)
        versions = _read(stream, after=layout.last_version_id, limit=min(limit, CHUNK))
        if versions:
            relaxed_commit()  # a crash loses the rows and the layout's progress together
            _place_chunk(stream, allocator, versions)
            layout.last_version_id = versions[-1][0]
            layout.allocator = allocator.state()
            layout.save()
        waiting = (
            _waiting(stream, layout.last_version_id) if len(versions) == min(limit, CHUNK) else 0
        )
    return Progress(allocator, layout.last_version_id, waiting)


def _read(stream: Stream, *, after: int, limit: int) -> list[tuple[int, list[int]]]:
    """The next ``limit`` versions after ``after``, in insertion order, with their
    parents (first parent first): one query."""
    return parents_after(stream.pk, after=after, limit=limit)


def _place_chunk(
    stream: Stream, allocator: LaneAllocator, versions: list[tuple[int, list[int]]]
) -> None:
    """Place ``versions`` and write their rows: one read of the parents placed before
    the chunk, and one bulk write per table."""
    mine = {vid for vid, _ in versions}
    wanted = {p for _, parents in versions for p in parents} - mine
    placed = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(version_id__in=wanted).values_list(
            "version_id", "row", "lane"
        )
    }
    places: list[tuple[int, ...]] = []
    edges: list[tuple[int, ...]] = []
    for vid, parent_ids in versions:
        parents = [placed[p] for p in parent_ids]
        spot = allocator.place(parents)
        placed[vid] = PlacedVersion(vid, spot.row, spot.lane)
        places.append((vid, stream.pk, spot.row, spot.lane))
        edges.extend(
            (stream.pk, vid, p.id, index, lane, spot.row, p.row, spot.lane, p.lane)
            for index, (p, lane) in enumerate(zip(parents, spot.edge_lanes, strict=True))
        )
    _write(VersionPlace, ("version_id", "stream_id", "row", "lane"), places)
    _write(
        EdgePlace,
        (
            "stream_id",
            "child_id",
            "parent_id",
            "index",
            "lane",
            "child_row",
            "parent_row",
            "child_lane",
            "parent_lane",
        ),
        edges,
    )


def _write(
    model: type[VersionPlace] | type[EdgePlace],
    columns: Sequence[str],
    rows: Iterable[tuple[int, ...]],
) -> None:
    """Insert plain rows: COPY on PostgreSQL, one ``executemany`` on SQLite."""
    rows = list(rows)
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if on_postgresql():
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def page_edges(
    stream: Stream, *, top: int, bottom: int, lanes: int, rows: int | None = None
) -> list[ParentEdge]:
    """Return every parent link touching rows ``bottom..top``: those leaving or reaching
    a row of the page, and those passing over it; with ``rows``, only links between
    the first ``rows`` versions (a layout read while another transaction places more).

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
    if rows is not None:
        touching = [link for link in touching if link.child_row < rows]
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

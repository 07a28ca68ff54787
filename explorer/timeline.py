"""What one page of the timeline shows: rows, their SVG layout, labels and colours."""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, QuerySet

from continust.log.states import released_run
from continust.models import Branch, Event, ReleasedRun, ReleasedVersion, Stream, Version
from explorer.layout import PageLayout, ParentEdge, PlacedVersion, page_layout
from explorer.models import VersionPlace
from explorer.placement import PageRows, page_rows, place_new_versions

PAGE_ROWS = 100
ROW_HEIGHT = 28
LANE_WIDTH = 18
PALETTE = 8
RELEASED_NODE = 14  # the side of the square drawn for a released run


def type_colour(event_type: str) -> int:
    """Return a stable palette index for an event type."""
    return zlib.crc32(event_type.encode("utf-8")) % PALETTE


@dataclass
class Row:
    """A version as the timeline lists it, with its links once ``link_rows`` set them."""

    version: Version
    row: int
    lane: int
    y: float
    x: float
    colour: int
    branches: tuple[str, ...]
    day: str | None  # the date, on the first row of a day
    merge: bool
    href: str = ""
    panel: str = ""
    pick_a: str = ""
    pick_b: str = ""
    released: ReleasedRun | None = None  # set on the one row that stands for a released run

    @property
    def event(self) -> Event:
        return self.version.event

    @property
    def corner(self) -> tuple[float, float]:
        """The top left corner of a released run's square node, centred where a dot is."""
        return self.x - RELEASED_NODE / 2, self.y - RELEASED_NODE / 2


@dataclass(frozen=True)
class Page:
    """One page: rows newest first, its drawing, and where the next page starts."""

    rows: list[Row]
    layout: PageLayout | None
    width: float
    height: float
    next_top: int | None
    total: int
    filtered: bool = False
    next_before: int | None = None
    legend: dict[str, int] = field(default_factory=dict)


def _heads(stream: Stream) -> dict[int, list[str]]:
    heads: dict[int, list[str]] = defaultdict(list)
    for name, head in (
        Branch.objects.filter(stream=stream).order_by("name").values_list("name", "head_id")
    ):
        heads[head].append(name)
    return heads


def _day(moment: datetime, previous: datetime | None) -> str | None:
    if previous is not None and previous.date() == moment.date():
        return None
    return moment.strftime("%Y-%m-%d")


def timeline_page(
    stream: Stream, *, top: int | None = None, previous_day: str | None = None
) -> Page:
    """Return the page of the stream's graph starting at row ``top`` (the newest by default)."""
    allocator = place_new_versions(stream)
    total = allocator.rows
    if total == 0:
        return Page([], None, 0, 0, None, 0)
    top = total - 1 if top is None else max(0, min(top, total - 1))
    found = page_rows(stream, top=top, count=PAGE_ROWS, folded=_folded(stream))
    placed, edges, runs = _fold_runs(found)
    layout = page_layout(placed, edges, row_height=ROW_HEIGHT, lane_width=LANE_WIDTH)
    merges = {e.child.id for e in edges if e.merge}
    heads = _heads(stream)
    rows, before = [], None
    for place, node in zip(found.rows, layout.nodes, strict=True):
        version = place.version
        moment = version.event.timestamp
        day = _day(moment, before)
        if before is None and previous_day == moment.strftime("%Y-%m-%d"):
            day = None
        before = moment
        rows.append(
            Row(
                version,
                place.row,
                place.lane,
                node.y,
                node.x,
                type_colour(version.event.type),
                tuple(heads.get(version.pk, ())),
                day,
                version.pk in merges,
                released=runs.get(version.pk),
            )
        )
    bottom = found.rows[-1].row
    width = max(layout.width, allocator.lanes * LANE_WIDTH)
    return Page(
        rows,
        layout,
        width,
        layout.height,
        bottom - 1 if bottom > 0 else None,
        total,
        legend=_legend(rows),
    )


def shown_row(version: Version) -> int | None:
    """The row to open the timeline near for a version; for a released one, its run's
    newest row, so the page shows what came after the run above the run's node."""
    run = released_run(version)
    if run is not None:
        return (
            VersionPlace.objects.filter(version_id=run.last_id)
            .values_list("row", flat=True)
            .first()
        )
    place = getattr(version, "place", None)
    return place.row if place else None


def _folded(stream: Stream) -> QuerySet[ReleasedVersion, Any]:
    """The versions drawn inside their released run's node: all but each run's first."""
    return (
        ReleasedVersion.objects.filter(run__stream=stream)
        .exclude(run__first_id=F("version"))
        .values("version")
    )


def _fold_runs(
    found: PageRows,
) -> tuple[list[PlacedVersion], list[ParentEdge], dict[int, ReleasedRun]]:
    """Draw each released run as one node, at its first version's place.

    The page's rows are renumbered to be consecutive again (rows below the page move
    up by as many as the page skipped), an edge that ends at a released version ends
    at its run's node instead, and edges inside a run disappear. Renumbering keeps the
    order of rows, so lines stay vertical and the layout's invariant holds.
    Return the rows, the edges, and the run each node on the page stands for.
    """
    placed = [PlacedVersion(p.version_id, p.row, p.lane) for p in found.rows]
    ends = {p.id for p in placed} | {v.id for e in found.edges for v in (e.child, e.parent)}
    runs = dict(ReleasedVersion.objects.filter(version__in=ends).values_list("version", "run"))
    if not runs:
        return placed, found.edges, {}
    by_id = {run.pk: run for run in ReleasedRun.objects.filter(pk__in=set(runs.values()))}
    run_of = {vid: by_id[run_id] for vid, run_id in runs.items()}
    nodes = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(
            version_id__in={run.first_id for run in by_id.values()}
        ).values_list("version_id", "row", "lane")
    }
    top, bottom = placed[0].row, placed[-1].row
    shown = {p.row: top - index for index, p in enumerate(placed)}
    skipped = bottom - shown[bottom]

    def drawn(version: PlacedVersion) -> PlacedVersion:
        if version.id in run_of:
            version = nodes[run_of[version.id].first_id]
        row = version.row if version.row > top else shown.get(version.row, version.row - skipped)
        return PlacedVersion(version.id, row, version.lane)

    edges = []
    for edge in found.edges:
        child, parent = drawn(edge.child), drawn(edge.parent)
        if child.id != parent.id:
            edges.append(ParentEdge(child, parent, edge.lane, edge.index))
    rows = [PlacedVersion(p.id, top - index, p.lane) for index, p in enumerate(placed)]
    return (
        rows,
        edges,
        {p.id: run_of[p.id] for p in placed if p.id in run_of and run_of[p.id].first_id == p.id},
    )


def _legend(rows: list[Row]) -> dict[str, int]:
    return {row.event.type: row.colour for row in rows}


@dataclass(frozen=True)
class Filters:
    """Timeline filters from the query string; empty values filter nothing."""

    branch: str = ""
    type: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.branch or self.type or self.actor or self.since or self.until)


def filtered_page(
    stream: Stream, filters: Filters, *, before: int | None = None, previous_day: str | None = None
) -> Page:
    """Return matching versions newest first, placed in their lanes but without edges."""
    allocator = place_new_versions(stream)
    query = (
        Version.objects.filter(stream=stream)
        .select_related("event", "place")
        .defer("event__payload")
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
    if before is not None:
        query = query.filter(id__lt=before)
    versions = list(query.order_by("-id")[: PAGE_ROWS + 1])
    more = len(versions) > PAGE_ROWS
    versions = versions[:PAGE_ROWS]
    heads = _heads(stream)
    rows, last = [], None
    for index, version in enumerate(versions):
        moment = version.event.timestamp
        day = _day(moment, last)
        if last is None and previous_day == moment.strftime("%Y-%m-%d"):
            day = None
        last = moment
        lane = version.place.lane
        rows.append(
            Row(
                version,
                version.place.row,
                lane,
                index * ROW_HEIGHT + ROW_HEIGHT / 2,
                lane * LANE_WIDTH + LANE_WIDTH / 2,
                type_colour(version.event.type),
                tuple(heads.get(version.pk, ())),
                day,
                False,
            )
        )
    return Page(
        rows,
        None,
        allocator.lanes * LANE_WIDTH,
        len(rows) * ROW_HEIGHT,
        None,
        allocator.rows,
        filtered=True,
        next_before=versions[-1].pk if more else None,
        legend=_legend(rows),
    )


def link_rows(page: Page, *, stream_url: str, params: dict[str, str]) -> None:
    """Give each row its links; built here once, the template only prints them.

    ``params`` is the page's query without the selection and picks, which each
    link sets for itself.
    """
    rest = {k: v for k, v in params.items() if k not in {"v", "a", "b", "fragment", "day"}}
    prefix = "?" + urlencode(rest) + "&" if rest else "?"
    keep = {k: params[k] for k in ("a", "b", "v") if params.get(k)}
    for row in page.rows:
        pk = row.version.pk
        row.href = prefix + urlencode({**keep, "v": pk})
        row.pick_a = prefix + urlencode({**keep, "a": pk})
        row.pick_b = prefix + urlencode({**keep, "b": pk})
        row.panel = f"{stream_url}v/{pk}/"

"""What one page of the timeline shows: rows, their SVG layout, labels and colours.

The versions come from the domain's one read of a page (`continust.read.timeline`);
this module places them in their stored rows and lanes and draws the lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from urllib.parse import urlencode

from continust.audit.tags import tags_by_version
from continust.log.states import released_run
from continust.models import Event, ReleasedRun, ReleasedVersion, Stream, Version
from continust.read.timeline import (
    Filters,
    TimelinePage,
    TimelineRow,
    timeline_page,
)
from explorer.layout import EdgeMark, PageLayout, ParentEdge, PlacedVersion, page_layout
from explorer.models import VersionPlace
from explorer.placement import COUNTED, page_edges, place_for_page

PAGE_ROWS = 100
ROW_HEIGHT = 28
LANE_WIDTH = 18
PALETTE = 8
RELEASED_NODE = 14  # the side of the square drawn for a released run
CONTEXT = 5  # rows shown above a version the timeline is opened at

__all__ = ["Filters", "Page", "Row", "build_page", "lane_colour", "link_rows", "opening_before"]


def lane_colour(lane: int) -> int:
    """Return the palette index of a lane: each column keeps its colour, as in git GUIs."""
    return lane % PALETTE


@dataclass
class Row:
    """A version as the timeline lists it, with its links once ``link_rows`` set them."""

    version: Version
    row: int
    lane: int
    y: float
    x: float
    colour: str  # the palette index, as text
    branches: tuple[str, ...]
    day: str | None  # the date, on the first row of a day
    merge: bool
    href: str = ""
    panel: str = ""
    pick_a: str = ""
    pick_b: str = ""
    released: ReleasedRun | None = None  # set on the one row that stands for a released run
    selected: bool = False
    picked_a: bool = False
    picked_b: bool = False
    tags: tuple[str, ...] = ()  # the tags naming this version

    @property
    def event(self) -> Event:
        return self.version.event

    # Numbers the template prints, as text: Django would localize each number it
    # prints, which costs more than the rest of the page.

    @property
    def id(self) -> str:
        return str(self.version.pk)

    @property
    def number(self) -> str:
        """The version's position in its stream, from 1: what the timeline shows as #n."""
        return str(self.row + 1)

    @cached_property
    def moment(self) -> tuple[str, str, str]:
        """The event's time: ISO 8601, date and time, and hours and minutes (UTC)."""
        moment = self.event.timestamp.astimezone(UTC)
        return (
            moment.isoformat(),
            moment.strftime("%Y-%m-%d %H:%M:%S"),
            moment.strftime("%H:%M"),
        )

    @property
    def label(self) -> str:
        """What a screen reader says of the row."""
        event = self.event
        if self.released is not None:
            run = self.released
            what = f"{run.length} versions released, v{run.first_id} to v{run.last_id}"
        else:
            what = f"#{self.number}, version {self.version.pk}, {event.type}"
        text = f"{what} by {event.actor or 'no actor'}"
        if self.branches:
            text += f", head of {', '.join(self.branches)}"
        return text + (", merge" if self.merge else "")

    @property
    def row_class(self) -> str:
        """The list item's classes: released, and the marks the address sets."""
        marks = [
            ("released", self.released is not None),
            ("selected", self.selected),
            ("picked-a", self.picked_a),
            ("picked-b", self.picked_b),
        ]
        return " ".join(["tl-row"] + [name for name, on in marks if on])

    @property
    def node_class(self) -> str:
        return f"node c{self.colour}" + (" selected" if self.selected else "")

    @property
    def radius(self) -> str:
        return "6" if self.merge else "5"

    @property
    def cx(self) -> str:
        return _num(self.x)

    @property
    def cy(self) -> str:
        return _num(self.y)

    @property
    def corner(self) -> tuple[str, str]:
        """The top left corner of a released run's square node, centred where a dot is."""
        return _num(self.x - RELEASED_NODE / 2), _num(self.y - RELEASED_NODE / 2)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Page:
    """One page: rows newest first, its drawing, and the cursor of the next page."""

    rows: list[Row]
    layout: PageLayout | None
    width: float
    height: float
    next_before: int | None
    total: int
    filtered: bool = False
    newest: int | None = None
    edges: list[tuple[EdgeMark, str]] = field(default_factory=list)  # with each one's colour
    placing: int = 0  # newer versions not placed yet, so not drawn yet

    @property
    def total_label(self) -> str:
        """The stream's number of versions, as the page's heading says it."""
        if self.placing > COUNTED:
            return f"more than {self.total - 1} versions"
        return f"{self.total} version{'s' if self.total != 1 else ''}"

    @property
    def placing_label(self) -> str:
        """How many versions wait to be placed, as the notice says it."""
        if self.placing > COUNTED:
            return f"more than {COUNTED:,} newer versions"
        return f"{self.placing:,} newer version{'s' if self.placing != 1 else ''}"

    @property
    def size(self) -> tuple[str, str]:
        """The drawing's width and height, as text."""
        return _num(self.width), _num(self.height)


def _day(moment: datetime, previous: datetime | None) -> str | None:
    if previous is not None and previous.date() == moment.date():
        return None
    return moment.strftime("%Y-%m-%d")


def build_page(
    stream: Stream,
    *,
    before: int | None = None,
    filters: Filters | None = None,
    previous_day: str | None = None,
) -> Page:
    """Return the page of versions older than ``before`` (the newest page by default).

    Without filters the page is drawn with its lines; filtered, the matching versions
    stand in their lanes without lines. While newer versions wait to be placed (see
    `explorer.placement`), the pages end at the newest placed version and say how many
    wait; ``newest`` is then that version, so the live tail shows the rest once placed.
    """
    filters = filters or Filters()
    progress = place_for_page(stream)
    allocator = progress.allocator
    # Only placed versions are drawn: pages end at the newest one placed.
    newest = (progress.last_placed or None) if before is None else None
    before = progress.last_placed + 1 if before is None else min(before, progress.last_placed + 1)
    if progress.last_placed:
        read = timeline_page(stream, before=before, limit=PAGE_ROWS, filters=filters)
    else:
        read = TimelinePage([], None)
    width: float = allocator.lanes * LANE_WIDTH
    if not read.rows:
        return Page(
            [],
            None,
            width,
            0,
            None,
            allocator.rows + progress.waiting,
            filters.active,
            newest,
            placing=progress.waiting,
        )
    places = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(
            version_id__in=[r.version.pk for r in read.rows]
        ).values_list("version_id", "row", "lane")
    }
    placed = [places[r.version.pk] for r in read.rows]
    layout: PageLayout | None = None
    if filters.active:
        points = [
            (index * ROW_HEIGHT + ROW_HEIGHT / 2, p.lane * LANE_WIDTH + LANE_WIDTH / 2)
            for index, p in enumerate(placed)
        ]
    else:
        edges = page_edges(
            stream,
            top=placed[0].row,
            bottom=placed[-1].row,
            lanes=allocator.lanes,
            rows=allocator.rows,
        )
        shown, edges = _fold_runs(placed, edges, read.rows)
        layout = page_layout(shown, edges, row_height=ROW_HEIGHT, lane_width=LANE_WIDTH)
        points = [(node.y, node.x) for node in layout.nodes]
        width = max(width, layout.width)
    rows, before_moment = [], None
    for found, place, (y, x) in zip(read.rows, placed, points, strict=True):
        moment = found.event.timestamp
        day = _day(moment, before_moment)
        if before_moment is None and previous_day == moment.strftime("%Y-%m-%d"):
            day = None
        before_moment = moment
        rows.append(
            Row(
                found.version,
                place.row,
                place.lane,
                y,
                x,
                str(lane_colour(place.lane)),
                found.heads,
                day,
                len(found.parents) > 1,
                released=found.released,
            )
        )
    named = tags_by_version(stream, [row.version.pk for row in rows])
    for row in rows:
        row.tags = tuple(named.get(row.version.pk, ()))
    return Page(
        rows,
        layout,
        width,
        len(rows) * ROW_HEIGHT,
        read.next,
        allocator.rows + progress.waiting,
        filters.active,
        newest,
        [(edge, str(lane_colour(edge.lane))) for edge in layout.edges] if layout else [],
        placing=progress.waiting,
    )


def opening_before(stream: Stream, version: Version) -> int | None:
    """The cursor of the page that shows a version a few rows below its top; for a
    released version, its run's node, with what came after the run above it."""
    run = released_run(version)
    newest = run.last_id if run is not None else version.pk
    above = (
        Version.objects.filter(stream=stream, id__gt=newest)
        .order_by("id")
        .values_list("id", flat=True)[CONTEXT - 1 : CONTEXT]
    )
    return above[0] + 1 if above else None


def _fold_runs(
    placed: list[PlacedVersion], edges: list[ParentEdge], rows: list[TimelineRow]
) -> tuple[list[PlacedVersion], list[ParentEdge]]:
    """Draw each released run as one node, at its first version's place.

    The page's rows are renumbered to be consecutive again (rows below the page move
    up by as many as the page skipped), an edge that ends at a released version ends
    at its run's node instead, and edges inside a run disappear. Renumbering keeps the
    order of rows, so lines stay vertical and the layout's invariant holds.
    """
    ends = {v.id for e in edges for v in (e.child, e.parent)} - {p.id for p in placed}
    runs = dict(ReleasedVersion.objects.filter(version__in=ends).values_list("version", "run"))
    firsts = {r.version.pk: r.released for r in rows if r.released is not None}
    top, bottom = placed[0].row, placed[-1].row
    consecutive = [p.row for p in placed] == list(range(top, bottom - 1, -1))
    if not runs and not firsts and consecutive:
        return placed, edges
    by_id = {run.pk: run for run in firsts.values() if run is not None}
    missing = set(runs.values()) - set(by_id)
    by_id.update({run.pk: run for run in ReleasedRun.objects.filter(pk__in=missing)})
    run_of = {vid: by_id[run_id] for vid, run_id in runs.items()}
    run_of.update({vid: run for vid, run in firsts.items() if run is not None})
    nodes = {
        vid: PlacedVersion(vid, row, lane)
        for vid, row, lane in VersionPlace.objects.filter(
            version_id__in={run.first_id for run in run_of.values()}
        ).values_list("version_id", "row", "lane")
    }
    shown = {p.row: top - index for index, p in enumerate(placed)}
    skipped = bottom - shown[bottom]

    def drawn(version: PlacedVersion) -> PlacedVersion:
        if version.id in run_of:
            version = nodes[run_of[version.id].first_id]
        row = version.row if version.row > top else shown.get(version.row, version.row - skipped)
        return PlacedVersion(version.id, row, version.lane)

    folded = []
    for edge in edges:
        child, parent = drawn(edge.child), drawn(edge.parent)
        if child.id != parent.id:
            folded.append(ParentEdge(child, parent, edge.lane, edge.index))
    return [PlacedVersion(p.id, top - index, p.lane) for index, p in enumerate(placed)], folded


def link_rows(page: Page, *, stream_url: str, params: dict[str, str]) -> None:
    """Give each row its links and marks; built here once, the template only prints them.

    ``params`` is the page's query. The address is the one source of the selection
    (``v``) and the picks (``a``, ``b``): rows are marked from it here, and the
    script marks them again from the address whenever it changes.
    """
    rest = {
        k: v
        for k, v in params.items()
        if k not in {"v", "a", "b", "fragment", "day", "before", "after"}
    }
    keep = {k: params[k] for k in ("a", "b", "v") if params.get(k)}
    for row in page.rows:
        pk = row.version.pk
        row.href = "?" + urlencode({**rest, **keep, "v": pk})
        row.pick_a = "?" + urlencode({**rest, **keep, "a": pk})
        row.pick_b = "?" + urlencode({**rest, **keep, "b": pk})
        row.panel = f"{stream_url}v/{pk}/"
        row.selected = keep.get("v") == str(pk)
        row.picked_a = keep.get("a") == str(pk)
        row.picked_b = keep.get("b") == str(pk)

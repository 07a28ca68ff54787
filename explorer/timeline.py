"""What one page of the timeline shows: rows, their SVG layout, labels and colours."""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from continust.models import Branch, Stream, Version
from explorer.layout import PageLayout, PlacedVersion, page_layout
from explorer.placement import page_rows, place_new_versions

PAGE_ROWS = 100
ROW_HEIGHT = 28
LANE_WIDTH = 18
PALETTE = 8


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

    @property
    def event(self):  # type: ignore[no-untyped-def]
        return self.version.event


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
    for name, head in Branch.objects.filter(stream=stream).order_by("name").values_list(
        "name", "head_id"
    ):
        heads[head].append(name)
    return heads


def _day(moment: datetime, previous: datetime | None) -> str | None:
    if previous is not None and previous.date() == moment.date():
        return None
    return moment.strftime("%Y-%m-%d")


def timeline_page(stream: Stream, *, top: int | None = None, previous_day: str | None = None
                  ) -> Page:
    """Return the page of the stream's graph starting at row ``top`` (the newest by default)."""
    allocator = place_new_versions(stream)
    total = allocator.rows
    if total == 0:
        return Page([], None, 0, 0, None, 0)
    top = total - 1 if top is None else max(0, min(top, total - 1))
    found = page_rows(stream, top=top, count=PAGE_ROWS)
    placed = [PlacedVersion(p.version_id, p.row, p.lane) for p in found.rows]
    layout = page_layout(placed, found.edges, row_height=ROW_HEIGHT, lane_width=LANE_WIDTH)
    merges = {e.child.id for e in found.edges if e.merge}
    heads = _heads(stream)
    rows, before = [], None
    for place, node in zip(found.rows, layout.nodes, strict=True):
        version = place.version
        moment = version.event.timestamp
        day = _day(moment, before)
        if before is None and previous_day == moment.strftime("%Y-%m-%d"):
            day = None
        before = moment
        rows.append(Row(version, place.row, place.lane, node.y, node.x,
                        type_colour(version.event.type), tuple(heads.get(version.pk, ())),
                        day, version.pk in merges))
    bottom = found.rows[-1].row
    width = max(layout.width, allocator.lanes * LANE_WIDTH)
    return Page(rows, layout, width, layout.height, bottom - 1 if bottom > 0 else None, total,
                legend=_legend(rows))


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


def filtered_page(stream: Stream, filters: Filters, *, before: int | None = None,
                  previous_day: str | None = None) -> Page:
    """Return matching versions newest first, placed in their lanes but without edges."""
    allocator = place_new_versions(stream)
    query = Version.objects.filter(stream=stream).select_related("event", "place").defer(
        "event__payload")
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
    versions = list(query.order_by("-id")[:PAGE_ROWS + 1])
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
        rows.append(Row(version, version.place.row, lane, index * ROW_HEIGHT + ROW_HEIGHT / 2,
                        lane * LANE_WIDTH + LANE_WIDTH / 2, type_colour(version.event.type),
                        tuple(heads.get(version.pk, ())), day, False))
    return Page(rows, None, allocator.lanes * LANE_WIDTH, len(rows) * ROW_HEIGHT, None,
                allocator.rows, filtered=True,
                next_before=versions[-1].pk if more else None, legend=_legend(rows))


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

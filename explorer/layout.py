"""Lay out a stream's version graph as rows and lanes for the explorer's SVG timeline.

Rows are versions, newest at the top, in descending insertion order: parents are
inserted before their children, so this order is topological, and a page is a plain
range of rows. Lanes are the timeline's columns. Each edge runs vertically in one
lane (its *edge lane*) and bends, inside the band of the row it leaves or reaches, when
its ends sit in other lanes.

Why lanes are assigned bottom-up, when a version is appended
------------------------------------------------------------
``git log --graph`` walks top-down from the heads it shows, so its columns depend on
the top of the graph: every append may shift the lanes of every row below it, and a
cache of top-down checkpoints per page goes stale with each new head; opening the
newest page after an append means walking from the top again, and a version deep in
a long history can only be placed after walking everything above it. Walking
bottom-up instead, a version's place depends only on versions inserted before it,
which never change. So `LaneAllocator.place` gives each appended version its row and
lane, and each of its parent links an edge lane, once and for all, in O(lanes); the
app stores them next to the version and the link, and keeps the allocator's state
(one entry per lane, not per version) on the stream. A page is then drawn from its
own rows and the links that touch it, whatever the history's length, and the layout
of old rows never changes.

The price: git keeps the first-parent chain of the head it shows in the leftmost
column, while here each first-parent chain keeps the lane it started in, and lanes
are numbered in the order they were first needed.

Placement rules
---------------
- A version takes its first parent's lane while that lane is free at the parent, that
  is when nothing (no child, no edge) uses the lane above the parent yet; the edge is
  then a straight line.
- Otherwise (a fork off a version whose lane is taken above it) it takes a lane free
  over the whole span down to that parent, with a row to spare, and the edge runs in
  that lane and bends into the parent in the parent's row. A root takes a lane free
  above the previous row.
- A merge's other parents are joined by edges running in the parent's own lane when
  it is free at the parent (the merged branch's line bends into the merge), else in a
  lane free over the edge's span.
- Among free lanes, the one whose last use is highest wins (best fit): lanes freed
  long ago stay free for long edges, such as a fork off an old version. A lane frees
  above the row where its last edge ends, so a branch merged back gives its lane up
  right above the merge; reuse never crosses a line.

Invariant (the tests check it on random graphs): at every row, the vertical lines
passing through it lie in distinct lanes, none of them the lane of the row's version.

Bound on lanes: at most 2 more than the most edges crossing any one boundary between
two rows, which every layout must draw side by side. Proof sketch: when a new lane
opens, let x be the lowest top of a lane. A lane holding nothing at row x got its
first item above x from a best-fit choice that passed over the lane topped at x, so
that item starts at row x + 1 (the spare row) and hangs from the version at row x,
or is a root at row x + 1. Every lane thus holds the version at row x, a line
crossing row x, an edge from the version at row x, or the root at row x + 1.

What the app stores and queries
-------------------------------
- Per version: ``row`` (its index in the stream, 0 for the first one) and ``lane``.
- Per parent link (child, parent, index): the edge ``lane``, and, copied from both
  versions so one index serves the page query, ``child_row`` and ``parent_row``.
- Per stream: ``LaneAllocator.state()``, a small JSON object. An append loads it,
  calls ``place`` for each new version in insertion order, and saves it, in the
  transaction that inserts the versions, with the stream row locked.

A page of rows ``bottom..top`` (``WHERE row <= top ORDER BY row DESC LIMIT n``, or by
id) needs, as `ParentEdge` values, every link touching it:

1. links whose child is on the page;
2. links whose parent is on the page and whose child is above it;
3. links passing over the whole page. The invariant gives at most one per lane, and
   it is the lane's link with the lowest ``child_row`` above ``top``; so for each lane
   ``l`` of ``range(allocator.lanes)``, one index probe on (stream, lane, child_row):
   ``lane = l AND child_row > top ORDER BY child_row LIMIT 1``, kept when
   ``parent_row < bottom``.

`page_layout` ignores links that do not touch the page, so passing extra ones is
harmless.

Bound on SVG elements per page: one circle per row and one path per edge touching
the page, that is at most rows + (parent links of the page's rows) + (lanes - 1) +
(parent links of the row just above the page). A path drawn across several pages is
split at the page boundaries, which fall between row bands, where lines are straight:
the pages, stacked, draw exactly the whole graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STATE_FORMAT = 1


@dataclass(frozen=True)
class PlacedVersion:
    """A version with the row and lane the allocator gave it."""

    id: int
    row: int
    lane: int


@dataclass(frozen=True)
class Placement:
    """Where a new version goes: its row, its lane, and one edge lane per parent."""

    row: int
    lane: int
    edge_lanes: tuple[int, ...]


@dataclass(frozen=True)
class ParentEdge:
    """A parent link between two placed versions, with its edge lane.

    ``index`` is the parent's position among the child's parents: 0 for the first
    parent, more for the other parents of a merge.
    """

    child: PlacedVersion
    parent: PlacedVersion
    lane: int
    index: int = 0

    @property
    def merge(self) -> bool:
        return self.index > 0


class LaneAllocator:
    """Place appended versions in rows and lanes, bottom-up, once and for all.

    The state is the number of rows placed and, per lane, the highest row the lane
    is used at: its size grows with the lanes, not with the versions.
    """

    def __init__(self, rows: int = 0, tops: Sequence[int] = ()) -> None:
        self._rows = rows
        self._tops = list(tops)

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> LaneAllocator:
        """Rebuild an allocator from what `state` returned."""
        try:
            if state["format"] != STATE_FORMAT:
                raise ValueError(f"unknown format {state['format']!r}")
            rows, tops = state["rows"], state["tops"]
            if not isinstance(rows, int) or not isinstance(tops, list):
                raise TypeError("rows must be an integer and tops a list")
            if not all(isinstance(top, int) and -1 <= top < rows for top in tops):
                raise ValueError("tops must be rows already placed")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"invalid lane state {state!r}: {err}") from err
        return cls(rows, tops)

    def state(self) -> dict[str, object]:
        """Return the state as plain JSON values."""
        return {"format": STATE_FORMAT, "rows": self._rows, "tops": list(self._tops)}

    @property
    def rows(self) -> int:
        """How many versions have been placed."""
        return self._rows

    @property
    def lanes(self) -> int:
        """How many lanes the layout uses so far."""
        return len(self._tops)

    def place(self, parents: Sequence[PlacedVersion]) -> Placement:
        """Place the next version above all placed ones, given its placed parents."""
        self._check(parents)
        row = self._rows
        edge_lanes: dict[int, int] = {}
        # Merged branches keep their own lanes before a fork may take them.
        for index, parent in enumerate(parents[1:], start=1):
            if self._free_at(parent):
                edge_lanes[index] = parent.lane
                self._join(parent, parent.lane, row)
        if not parents:
            lane = self._free_lane(above=row - 1)
        elif self._free_at(parents[0]):
            lane = parents[0].lane
        else:
            lane = self._free_lane(above=parents[0].row)
            self._join(parents[0], lane, row)
        self._tops[lane] = row
        if parents:
            edge_lanes[0] = lane
        for index, parent in enumerate(parents[1:], start=1):
            if index not in edge_lanes:
                edge_lanes[index] = self._free_lane(above=parent.row)
                self._join(parent, edge_lanes[index], row)
        self._rows += 1
        return Placement(row, lane, tuple(edge_lanes[i] for i in range(len(parents))))

    def _check(self, parents: Sequence[PlacedVersion]) -> None:
        rows = [parent.row for parent in parents]
        if len(set(rows)) != len(rows):
            raise ValueError(f"a version cannot have the same parent twice: rows {rows}")
        for parent in parents:
            if not 0 <= parent.row < self._rows or not 0 <= parent.lane < self.lanes:
                raise ValueError(
                    f"parent {parent.id} at row {parent.row}, lane {parent.lane} was not "
                    f"placed by this allocator ({self._rows} rows, {self.lanes} lanes)"
                )

    def _free_at(self, parent: PlacedVersion) -> bool:
        """Tell whether nothing uses the parent's lane above the parent yet."""
        return self._tops[parent.lane] == parent.row

    def _free_lane(self, *, above: int) -> int:
        """Return the lane unused above row ``above`` that was used last, or a new one."""
        free = [lane for lane, top in enumerate(self._tops) if top < above]
        if free:
            return max(free, key=lambda lane: (self._tops[lane], -lane))
        self._tops.append(-1)
        return len(self._tops) - 1

    def _join(self, parent: PlacedVersion, lane: int, row: int) -> None:
        """Hold ``lane`` for the edge from the version at ``row`` down to ``parent``."""
        if parent.row < row - 1:
            self._tops[lane] = row - 1


@dataclass(frozen=True)
class NodeMark:
    """A version's dot on the page: centre ``x``, ``y`` in page pixels."""

    id: int
    row: int
    lane: int
    x: float
    y: float


@dataclass(frozen=True)
class EdgeMark:
    """The part of an edge drawn on the page, as SVG path data.

    ``lane`` is the lane the edge runs in, whose colour it takes; ``kind`` is its line
    style, one of `EDGE_KINDS`.
    """

    child_id: int
    parent_id: int
    merge: bool
    d: str
    lane: int = 0
    kind: str = "parent"


#: Every line style the timeline draws, and what it means (the page's legend).
EDGE_KINDS = {
    "parent": "solid line: a version follows its parent on the same lane",
    "fork": "solid line that bends away: a branch forked off that version",
    "merge": "dashed line: a merge's other parent, the branch merged in",
}


@dataclass(frozen=True)
class PageLayout:
    """Everything the template draws for one page of the timeline."""

    top_row: int
    bottom_row: int
    width: float
    height: float
    nodes: tuple[NodeMark, ...]
    edges: tuple[EdgeMark, ...]


def page_layout(
    rows: Sequence[PlacedVersion],
    edges: Iterable[ParentEdge],
    *,
    row_height: int = 24,
    lane_width: int = 16,
) -> PageLayout:
    """Lay out one page: its rows, newest first and consecutive, and the edges touching it.

    Edges are the parent links described in the module docstring; those that do not
    touch the page are ignored, duplicates are drawn once. ``y`` is 0 at the top of
    the page and each row is a band ``row_height`` tall with its dot at the centre.
    """
    if not rows:
        raise ValueError("a page needs at least one row")
    top = rows[0].row
    if [version.row for version in rows] != list(range(top, top - len(rows), -1)):
        raise ValueError(
            f"page rows must be consecutive and descending, got rows "
            f"{[version.row for version in rows]}"
        )
    grid = _Grid(top, len(rows), row_height, lane_width)
    nodes = tuple(NodeMark(v.id, v.row, v.lane, grid.x(v.lane), grid.y(v.row)) for v in rows)
    unique = {(e.child.id, e.parent.id): e for e in edges}
    ordered = sorted(unique.values(), key=lambda e: (-e.child.row, e.index))
    marks = []
    widest = max(v.lane for v in rows)
    for edge in ordered:
        d = grid.path(edge)
        if d:
            kind = "merge" if edge.merge else "parent" if edge.lane == edge.parent.lane else "fork"
            marks.append(EdgeMark(edge.child.id, edge.parent.id, edge.merge, d, edge.lane, kind))
            widest = max(widest, edge.lane, edge.child.lane, edge.parent.lane)
    return PageLayout(
        top_row=top,
        bottom_row=rows[-1].row,
        width=(widest + 1) * lane_width,
        height=len(rows) * row_height,
        nodes=nodes,
        edges=tuple(marks),
    )


@dataclass(frozen=True)
class _Grid:
    """Page geometry: where rows and lanes are, and how an edge is drawn."""

    top: int
    count: int
    row_height: int
    lane_width: int

    def x(self, lane: int) -> float:
        return lane * self.lane_width + self.lane_width / 2

    def y(self, row: int) -> float:
        return (self.top - row) * self.row_height + self.row_height / 2

    def path(self, edge: ParentEdge) -> str:
        """Return the path data of the edge's part on the page, empty if none.

        The edge leaves its child, bends into its edge lane within the lower half of
        the child's band, runs down the lane, and bends into its parent within the
        upper half of the parent's band. Bends stay inside one band, so page
        boundaries only ever cut the straight part.
        """
        half = self.row_height / 2
        xc, xe, xp = self.x(edge.child.lane), self.x(edge.lane), self.x(edge.parent.lane)
        yc, yp = self.y(edge.child.row), self.y(edge.parent.row)
        bottom = self.count * self.row_height
        pieces: list[str] = []
        start: tuple[float, float] | None = None
        y_line = yc
        if edge.lane != edge.child.lane:
            y_line = yc + half
            if yc >= 0 and y_line <= bottom:
                start = (xc, yc)
                pieces.append(_curve(xc, yc, xe, y_line))
        y_end = yp - half if edge.lane != edge.parent.lane else yp
        y_from, y_to = max(y_line, 0.0), min(y_end, bottom)
        if y_from < y_to:
            start = start or (xe, y_from)
            pieces.append(f"L{_num(xe)} {_num(y_to)}")
        if edge.lane != edge.parent.lane and y_end >= 0 and yp <= bottom:
            start = start or (xe, y_end)
            pieces.append(_curve(xe, y_end, xp, yp))
        if start is None:
            return ""
        return f"M{_num(start[0])} {_num(start[1])}" + "".join(pieces)


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    """Return an S-bend from the current point to (x2, y2), vertical at both ends."""
    middle = (y1 + y2) / 2
    return f"C{_num(x1)} {_num(middle)} {_num(x2)} {_num(middle)} {_num(x2)} {_num(y2)}"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")

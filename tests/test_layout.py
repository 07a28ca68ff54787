"""Tests for the timeline layout: lanes placed at append time, pages drawn alone.

The graphs under test are drawn the way ``git log --graph`` draws them, newest
version on top, one column per lane. Lines holding a ``*`` are asserted exactly: the
version's lane and the lines passing through its row. Lines between them only show
how the edges bend.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.layout import (
    LaneAllocator,
    ParentEdge,
    PlacedVersion,
    page_layout,
)

ROW_HEIGHT = 20
LANE_WIDTH = 10


class History:
    """A stream's versions placed one by one, as the app would store them."""

    def __init__(self) -> None:
        self.allocator = LaneAllocator()
        self.versions: list[PlacedVersion] = []
        self.edges: list[ParentEdge] = []
        self.names: dict[str, PlacedVersion] = {}

    @classmethod
    def of(cls, parents: list[list[int]]) -> History:
        history = cls()
        for row, row_parents in enumerate(parents):
            history.append(f"v{row}", *(f"v{parent}" for parent in row_parents))
        return history

    def append(self, name: str, *parents: str) -> PlacedVersion:
        placed = [self.names[parent] for parent in parents]
        placement = self.allocator.place(placed)
        # Ids are global and sparse, as in a table shared by many streams.
        version = PlacedVersion(1000 + 7 * placement.row, placement.row, placement.lane)
        self.versions.append(version)
        self.names[name] = version
        for index, (parent, lane) in enumerate(zip(placed, placement.edge_lanes, strict=True)):
            self.edges.append(ParentEdge(version, parent, lane, index))
        return version

    def lane(self, name: str) -> int:
        return self.names[name].lane

    def edge_lane(self, child: str, parent: str) -> int:
        child_id, parent_id = self.names[child].id, self.names[parent].id
        (edge,) = (e for e in self.edges if (e.child.id, e.parent.id) == (child_id, parent_id))
        return edge.lane

    def passing(self, row: int) -> list[int]:
        """Return the lanes of the lines passing through a row, one per edge."""
        return [e.lane for e in self.edges if e.parent.row < row < e.child.row]

    def picture(self) -> list[str]:
        """Draw each row, newest first: ``*`` for its version, ``|`` for lines passing."""
        by_id = {version.id: name for name, version in self.names.items()}
        lines = []
        for version in reversed(self.versions):
            cells = [" "] * self.allocator.lanes
            for lane in self.passing(version.row):
                cells[lane] = "|"
            cells[version.lane] = "*"
            lines.append(f"{' '.join(cells).rstrip()} {by_id[version.id]}")
        return lines

    def page(self, top: int, size: int) -> tuple[list[PlacedVersion], list[ParentEdge]]:
        """Load a page the way the app queries it: rows, then links touching them."""
        rows = [v for v in reversed(self.versions) if top - size < v.row <= top]
        bottom = rows[-1].row
        edges = [e for e in self.edges if bottom <= e.child.row <= top]
        edges += [e for e in self.edges if bottom <= e.parent.row <= top < e.child.row]
        for lane in range(self.allocator.lanes):
            above = [e for e in self.edges if e.lane == lane and e.child.row > top]
            if above:
                lowest = min(above, key=lambda e: e.child.row)
                if lowest.parent.row < bottom:
                    edges.append(lowest)
        return rows, edges


def assert_drawn(history: History, art: str) -> None:
    expected = [" ".join(line.split()[:-1]) for line in art.splitlines() if "*" in line]
    names = [line.split()[-1] for line in art.splitlines() if "*" in line]
    actual = history.picture()
    assert [line.rsplit(" ", 1)[1] for line in actual] == names
    assert [" ".join(line.split()[:-1]) for line in actual] == expected, "\n".join(actual)


def doc_art(test) -> str:
    return dedent(test.__doc__.split("\n", 1)[1])


def test_it_reuses_the_lane_of_a_branch_merged_back():
    """A feature branch merged back: its lane serves a later fork.

    *     P
    | *   N
     \\|
      *   M
     /|
    * |   F2
    | *   C
    * |   F1
    |/
    *     B
    *     A

    F1 came before C, so the feature kept A's lane and main forked off.
    """
    history = History()
    history.append("A")
    history.append("B", "A")
    history.append("F1", "B")
    history.append("C", "B")
    history.append("F2", "F1")
    history.append("M", "C", "F2")
    history.append("N", "M")
    history.append("P", "M")
    assert_drawn(history, doc_art(test_it_reuses_the_lane_of_a_branch_merged_back))
    assert history.edge_lane("C", "B") == 1
    assert history.edge_lane("M", "F2") == 0
    assert history.edge_lane("P", "M") == 0
    assert history.allocator.lanes == 2


def test_it_keeps_a_fork_off_an_old_version_in_a_long_lived_lane():
    """main goes on in lane 0 while a branch forked long ago runs beside it.

    *     H
    | *   G
    | *   F
    * |   m5
    * |   m4
    * |   m3
    * |   m2
    |/
    *     m1
    *     m0
    """
    history = History()
    history.append("m0")
    for row in range(1, 6):
        history.append(f"m{row}", f"m{row - 1}")
    history.append("F", "m1")
    history.append("G", "F")
    history.append("H", "m5")
    assert_drawn(history, doc_art(test_it_keeps_a_fork_off_an_old_version_in_a_long_lived_lane))


def test_it_draws_an_octopus_merge():
    """Three branches off B merged at once into O.

    *     O
    |\\ \\
    | | * Z
    | * | Y
    * | | X
    |/_/
    *     B
    """
    history = History()
    history.append("B")
    history.append("X", "B")
    history.append("Y", "B")
    history.append("Z", "B")
    history.append("O", "X", "Y", "Z")
    assert_drawn(history, doc_art(test_it_draws_an_octopus_merge))
    assert [history.edge_lane("O", parent) for parent in "XYZ"] == [0, 1, 2]


def test_it_draws_a_criss_cross_merge():
    """B and C merged both ways: M1 = B + C, M2 = C + B.

      *     M2
      |\\
    * | |   M1
    |\\| |
    | * |   C
    |_|_/
    * |     B
    |/
    *       A

    M1's edge to C joins the line M2 draws down to C.
    """
    history = History()
    history.append("A")
    history.append("B", "A")
    history.append("C", "A")
    history.append("M1", "B", "C")
    history.append("M2", "C", "B")
    assert_drawn(history, doc_art(test_it_draws_a_criss_cross_merge))
    assert history.edge_lane("M2", "B") == 2


def test_it_gives_unrelated_histories_their_own_lanes():
    """Two roots, A0 and B0, joined by a merge.

    *     M
    |\\
    * |   A2
    | *   B1
    | *   B0
    *     A1
    *     A0
    """
    history = History()
    history.append("A0")
    history.append("A1", "A0")
    history.append("B0")
    history.append("B1", "B0")
    history.append("A2", "A1")
    history.append("M", "A2", "B1")
    assert_drawn(history, doc_art(test_it_gives_unrelated_histories_their_own_lanes))


def test_it_resumes_from_a_stored_state():
    history = History.of([[], [0], [0], [1, 2]])
    state = json.loads(json.dumps(history.allocator.state()))
    resumed = LaneAllocator.from_state(state)
    parents = [history.versions[2], history.versions[1]]
    assert resumed.place(parents) == history.allocator.place(parents)


@pytest.mark.parametrize(
    "state",
    [{}, {"format": 2, "rows": 0, "tops": []}, {"format": 1, "rows": 1, "tops": [5]}],
)
def test_it_rejects_a_broken_state(state):
    with pytest.raises(ValueError, match="invalid lane state"):
        LaneAllocator.from_state(state)


def test_it_rejects_a_parent_it_did_not_place():
    allocator = LaneAllocator()
    allocator.place([])
    with pytest.raises(ValueError, match="not placed"):
        allocator.place([PlacedVersion(7, 3, 0)])
    with pytest.raises(ValueError, match="same parent twice"):
        allocator.place([PlacedVersion(1, 0, 0), PlacedVersion(1, 0, 0)])


def test_it_bends_a_fork_into_its_parent_and_flags_merges():
    """C forks off A; M merges C into B.

    *     M
    |\\
    | *   C
    * |   B
    |/
    *     A
    """
    history = History()
    history.append("A")
    history.append("B", "A")
    history.append("C", "A")
    history.append("M", "B", "C")
    layout = draw(history, history.versions[-1].row, len(history.versions))
    paths = {(e.child_id, e.parent_id): (e.d, e.merge) for e in layout.edges}
    ids = {name: version.id for name, version in history.names.items()}
    # Dots at x = 5 (lane 0) and 15 (lane 1); rows at y = 10, 30, 50, 70.
    assert paths[ids["M"], ids["B"]] == ("M5 10L5 50", False)
    assert paths[ids["M"], ids["C"]] == ("M5 10C5 15 15 15 15 20L15 30", True)
    assert paths[ids["C"], ids["A"]] == ("M15 30L15 60C15 65 5 65 5 70", False)
    assert paths[ids["B"], ids["A"]] == ("M5 50L5 70", False)
    assert (layout.width, layout.height) == (20, 80)


def test_it_needs_at_least_one_consecutive_row():
    history = History.of([[], [0], [1]])
    with pytest.raises(ValueError, match="at least one row"):
        page_layout([], history.edges)
    with pytest.raises(ValueError, match="consecutive"):
        page_layout([history.versions[2], history.versions[0]], history.edges)


def draw(history: History, top: int, size: int):
    rows, edges = history.page(top, size)
    return page_layout(rows, edges, row_height=ROW_HEIGHT, lane_width=LANE_WIDTH)


NUMBER = r"-?\d+(?:\.\d+)?"


def pieces(d: str, offset: float) -> list[tuple]:
    """Split path data into bends and one-row-band straight pieces, shifted by offset."""
    tokens = re.findall(rf"[MLC]|{NUMBER}", d)
    result: list[tuple] = []
    x = y = 0.0
    i = 0
    while i < len(tokens):
        command, i = tokens[i], i + 1
        count = {"M": 2, "L": 2, "C": 6}[command]
        values = [float(t) for t in tokens[i : i + count]]
        i += count
        if command == "C":
            points = [(values[k], values[k + 1] + offset) for k in range(0, 6, 2)]
            result.append(("C", (x, y), *points))
        elif command == "L":
            assert values[0] == x, f"lines run straight down a lane: {d}"
            result.extend(straight(x, y, values[1] + offset))
        x, y = values[-2], values[-1] + offset
    return result


def straight(x: float, y1: float, y2: float) -> list[tuple]:
    first, last = int(y1 // ROW_HEIGHT) + 1, int(-(-y2 // ROW_HEIGHT))
    cuts = [y1, *(k * ROW_HEIGHT for k in range(first, last)), y2]
    return [("L", x, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]


def endpoints(d: str) -> tuple[tuple[float, float], tuple[float, float]]:
    numbers = [float(n) for n in re.findall(NUMBER, d)]
    return (numbers[0], numbers[1]), (numbers[-2], numbers[-1])


@st.composite
def histories(draw_from, max_versions: int = 40) -> History:
    """Random histories: ids ascending, parents among earlier versions, roots anywhere."""
    count = draw_from(st.integers(1, max_versions))
    parents: list[list[int]] = [[]]
    for row in range(1, count):
        size = draw_from(st.sampled_from([0, 1, 1, 1, 1, 2, 2, 3, 4]))
        some = st.one_of(st.integers(0, row - 1), st.integers(max(0, row - 3), row - 1))
        chosen = draw_from(st.lists(some, min_size=size, max_size=size, unique=True))
        parents.append(chosen)
    return History.of(parents)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_lines_never_share_a_lane_with_a_version_or_another_line(history):
    for version in history.versions:
        lanes = history.passing(version.row)
        assert len(set(lanes)) == len(lanes), f"row {version.row}: {lanes}"
        assert version.lane not in lanes, f"row {version.row}"
    for edge in history.edges:
        if edge.index == 0:
            assert edge.lane == edge.child.lane, "a first-parent line leaves its child straight"


@settings(max_examples=200, deadline=None)
@given(histories())
def test_lanes_stay_within_two_of_the_most_edges_crossing_a_row_boundary(history):
    crossing = max(
        sum(1 for e in history.edges if e.parent.row <= row < e.child.row)
        for row in range(len(history.versions))
    )
    assert history.allocator.lanes <= crossing + 2


@settings(max_examples=100, deadline=None)
@given(histories(), st.integers(0, 40))
def test_it_places_the_same_after_a_stored_state_is_reloaded(history, split):
    parents = [
        [history.versions.index(e.parent) for e in history.edges if e.child == version]
        for version in history.versions
    ]
    split = min(split, len(parents))
    allocator = LaneAllocator()
    placed: list[PlacedVersion] = []
    for row, row_parents in enumerate(parents):
        if row == split:
            allocator = LaneAllocator.from_state(json.loads(json.dumps(allocator.state())))
        placement = allocator.place([placed[p] for p in row_parents])
        placed.append(PlacedVersion(history.versions[row].id, placement.row, placement.lane))
    assert placed == history.versions


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(1, 12))
def test_pages_drawn_alone_stack_into_the_whole_graph(history, size):
    count = len(history.versions)
    whole = draw(history, count - 1, count)
    xy = {v.id: (v.lane * LANE_WIDTH + LANE_WIDTH / 2, 0.0) for v in history.versions}
    for node in whole.nodes:
        xy[node.id] = (node.x, node.y)
    for edge in whole.edges:
        assert endpoints(edge.d) == (xy[edge.child_id], xy[edge.parent_id])
    assert len(whole.edges) == len(history.edges)

    expected_nodes = Counter((n.id, n.x, n.y) for n in whole.nodes)
    expected = Counter(
        (e.child_id, e.parent_id, e.merge, p) for e in whole.edges for p in pieces(e.d, 0)
    )
    nodes: Counter = Counter()
    drawn: Counter = Counter()
    for top in range(count - 1, -1, -size):
        page = draw(history, top, size)
        offset = (count - 1 - top) * ROW_HEIGHT
        nodes.update((n.id, n.x, n.y + offset) for n in page.nodes)
        for e in page.edges:
            drawn.update((e.child_id, e.parent_id, e.merge, p) for p in pieces(e.d, offset))
        above = [e for e in history.edges if e.child.row == top + 1]
        on_page = [e for e in history.edges if page.bottom_row <= e.child.row <= top]
        assert len(page.edges) <= len(on_page) + history.allocator.lanes - 1 + len(above)
    assert nodes == expected_nodes
    assert drawn == expected


@settings(max_examples=100, deadline=None)
@given(histories(), st.data())
def test_one_probe_per_lane_finds_every_line_passing_over_a_page(history, data):
    count = len(history.versions)
    top = data.draw(st.integers(0, count - 1))
    bottom = data.draw(st.integers(0, top))
    over = {e for e in history.edges if e.parent.row < bottom and e.child.row > top}
    probed = set()
    for lane in range(history.allocator.lanes):
        above = [e for e in history.edges if e.lane == lane and e.child.row > top]
        if above:
            lowest = min(above, key=lambda e: e.child.row)
            if lowest.parent.row < bottom:
                probed.add(lowest)
    assert probed == over

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from continust.graph.lineage import InvalidVersion, VersionGraph, VersionNotFound, VersionPath


def build(spec: str) -> VersionGraph[str]:
    """Build a graph from lines ``NODE: PARENT PARENT...``, parents first."""
    graph: VersionGraph[str] = VersionGraph()
    for line in spec.strip().splitlines():
        node, _, parents = line.partition(":")
        graph.add(node.strip(), parents.split())
    return graph


LINEAR = """
A:
B: A
C: B
D: C
"""

# B2 is added before B1 so that insertion order and names disagree.
CRISS_CROSS = """
A:
B2: A
B1: A
M1: B1 B2
M2: B2 B1
C1: M1
C2: M2
"""

OCTOPUS = """
A:
B: A
C: A
D: A
O: B C D
E: C
"""

TWO_ROOTS = """
R1:
A: R1
B: A
R2:
X: R2
Y: X
M: B Y
"""


def test_it_follows_a_linear_history():
    r"""
    A---B---C---D
    """
    graph = build(LINEAR)

    assert graph.merge_bases("B", "D") == ["B"]
    assert graph.merge_bases("D", "B") == ["B"]
    assert graph.ancestor_count("D") == 4
    assert graph.ancestors("C") == {"A", "B", "C"}
    assert graph.ancestors("C", include_self=False) == {"A", "B"}
    assert graph.between("B", "D") == ["D", "C"]
    assert graph.between_count("D", "B") == 0
    assert [graph.generation(node) for node in "ABCD"] == [0, 1, 2, 3]
    assert graph.roots() == ["A"]
    assert graph.heads() == ["D"]


def test_it_finds_both_merge_bases_of_a_criss_cross_merge():
    r"""
    A---B1---M1---C1
     \     \ /
      \     X
       \   / \
        B2---M2---C2
    """
    graph = build(CRISS_CROSS)

    # Both generation 1; B2 was added first.
    assert graph.merge_bases("C1", "C2") == ["B2", "B1"]
    assert graph.merge_bases("M1", "M2") == ["B2", "B1"]
    assert graph.merge_bases("C1", "B1") == ["B1"]
    assert graph.merge_bases("B1", "B2") == ["A"]
    assert graph.between("C2", "C1") == ["C1", "M1"]
    assert graph.between_count("A", "C1") == 4


def test_it_keeps_the_parents_of_an_octopus_merge_in_order():
    r"""
      B-------.
     /         \
    A---C-------O      O merges B, C and D, in that order
     \   \     /
      \   E   /
       D-----'
    """
    graph = build(OCTOPUS)

    assert graph.parents("O") == ("B", "C", "D")
    assert graph.children("A") == ["B", "C", "D"]
    assert graph.children("C") == ["O", "E"]
    assert graph.generation("O") == 2
    assert graph.merge_bases("O", "E") == ["C"]
    assert graph.merge_bases("O", "D") == ["D"]
    assert graph.merge_bases_of("B", "C", "D") == ["A"]
    assert graph.merge_bases_of("O", "E") == ["C"]
    assert graph.merge_bases_of("O", "B", "E") == ["A"]
    assert graph.merge_bases_of("E") == ["E"]
    assert graph.ancestor_count("O") == 5
    assert graph.between("E", "O") == ["O", "D", "B"]
    assert graph.heads() == ["O", "E"]


def test_it_finds_no_merge_base_between_unrelated_roots():
    r"""
    R1---A---B
              \
               M
              /
    R2---X---Y
    """
    graph = build(TWO_ROOTS)

    assert graph.roots() == ["R1", "R2"]
    assert graph.merge_bases("B", "Y") == []
    assert graph.merge_bases_of("A", "X", "M") == []
    assert graph.path("B", "Y") is None
    assert not graph.is_ancestor("R1", "Y")
    assert graph.merge_bases("M", "Y") == ["Y"]
    assert graph.between("B", "M") == ["M", "Y", "X", "R2"]
    assert graph.between("X", "B") == ["B", "A", "R1"]
    assert graph.ancestor_count("M") == 7
    assert graph.descendants("X") == {"X", "Y", "M"}
    assert graph.descendants("X", include_self=False) == {"Y", "M"}


def test_it_tells_ancestors_apart():
    r"""
    A---B1---M1---C1
     \     \ /
      \     X
       \   / \
        B2---M2---C2
    """
    graph = build(CRISS_CROSS)

    assert graph.is_ancestor("A", "C2")
    assert graph.is_ancestor("B1", "C2")
    assert graph.is_ancestor("C2", "C2")
    assert not graph.is_ancestor("C2", "A")
    assert not graph.is_ancestor("M1", "C2")
    assert not graph.is_ancestor("B1", "B2")


def test_it_draws_the_path_through_the_highest_merge_base():
    r"""
    A---B---C---D---E
         \         /
          F---G---H---I
    """
    graph = build(
        """
        A:
        B: A
        C: B
        F: B
        G: F
        D: C
        H: G
        E: D H
        I: H
        """
    )

    assert graph.path("E", "I") == VersionPath(base="H", from_a=("E", "H"), from_b=("I", "H"))
    assert graph.path("D", "G") == VersionPath(
        base="B", from_a=("D", "C", "B"), from_b=("G", "F", "B")
    )
    assert graph.path("E", "E") == VersionPath(base="E", from_a=("E",), from_b=("E",))


def test_it_picks_the_first_added_of_equal_merge_bases_for_the_path():
    r"""
    A---B1---M1---C1
     \     \ /
      \     X
       \   / \
        B2---M2---C2
    """
    graph = build(CRISS_CROSS)

    path = graph.path("C1", "C2")
    assert path == VersionPath(base="B2", from_a=("C1", "M1", "B2"), from_b=("C2", "M2", "B2"))


def test_it_answers_for_versions_added_after_a_query():
    r"""
    A---B---C          then          A---B---C---M
         \                                \     /
          D                                D---E
    """
    graph = build("A:\nB: A\nC: B\nD: B")
    assert graph.merge_bases("C", "D") == ["B"]
    assert graph.heads() == ["C", "D"]

    graph.add("E", ["D"])
    graph.add("M", ["C", "E"])

    assert graph.merge_bases("M", "D") == ["D"]
    assert graph.between("C", "M") == ["M", "E", "D"]
    assert graph.heads() == ["M"]
    assert graph.generation("M") == 4
    assert len(graph) == 6
    assert "M" in graph
    assert list(graph) == ["A", "B", "C", "D", "E", "M"]


def test_it_accepts_a_stored_generation_that_matches():
    graph = build(LINEAR)
    graph.add("E", ["D"], generation=4)

    assert graph.generation("E") == 4


@pytest.mark.parametrize(
    ("node", "parents", "generation", "message"),
    [
        ("B", ["A"], None, "'B' is already in the graph"),
        ("E", ["Z"], None, "parents ['Z'] of version 'E' are not in the graph"),
        ("E", ["E"], None, "'E' cannot be its own parent"),
        ("E", ["D", "D"], None, "lists a parent twice"),
        ("E", ["D"], 7, "has generation 7, but its parents ['D'] give it generation 4"),
    ],
)
def test_it_refuses_a_version_with_bad_parents(node, parents, generation, message):
    graph = build(LINEAR)

    with pytest.raises(InvalidVersion, match=message.replace("[", r"\[").replace("]", r"\]")):
        graph.add(node, parents, generation=generation)

    assert len(graph) == 4
    assert graph.heads() == ["D"]


def test_it_refuses_a_string_of_parents():
    graph: VersionGraph[str] = VersionGraph()
    graph.add("abc")

    with pytest.raises(TypeError, match="not a string"):
        graph.add("def", "abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        lambda graph: graph.parents("Z"),
        lambda graph: graph.children("Z"),
        lambda graph: graph.generation("Z"),
        lambda graph: graph.ancestors("Z"),
        lambda graph: graph.descendants("Z"),
        lambda graph: graph.is_ancestor("A", "Z"),
        lambda graph: graph.merge_bases("Z", "A"),
        lambda graph: graph.merge_bases_of("A", "Z"),
        lambda graph: graph.between("A", "Z"),
        lambda graph: graph.between_count("Z", "A"),
        lambda graph: graph.path("A", "Z"),
    ],
)
def test_it_names_an_unknown_version(query):
    graph = build(LINEAR)

    with pytest.raises(VersionNotFound, match="^version 'Z' is not in the graph$"):
        query(graph)


# -- properties on random histories ------------------------------------------


@st.composite
def histories(draw, max_size=24):
    """Draw the parents of each version, parents before children; some are roots."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    return [
        draw(st.lists(st.integers(min_value=0, max_value=version - 1), max_size=3, unique=True))
        if version
        else []
        for version in range(size)
    ]


def load(history):
    graph: VersionGraph[int] = VersionGraph()
    for version, parents in enumerate(history):
        graph.add(version, parents)
    return graph


def ancestry(history):
    """Return each version's ancestors, itself included, by definition."""
    found = []
    for version, parents in enumerate(history):
        found.append({version}.union(*(found[parent] for parent in parents)))
    return found


def best_common_ancestors(ancestors, versions):
    common = set.intersection(*(ancestors[version] for version in versions))
    return {
        candidate
        for candidate in common
        if not any(candidate in ancestors[other] for other in common - {candidate})
    }


def distance(history, top, base):
    """Count the parent links on a shortest way down from top to base."""
    steps = {top: 0}
    queue = deque([top])
    while queue:
        node = queue.popleft()
        for parent in history[node]:
            if parent not in steps:
                steps[parent] = steps[node] + 1
                queue.append(parent)
    return steps[base]


def pairs(history):
    return st.tuples(
        st.integers(min_value=0, max_value=len(history) - 1),
        st.integers(min_value=0, max_value=len(history) - 1),
    )


@settings(max_examples=300)
@given(data=st.data(), history=histories())
def test_it_finds_the_best_common_ancestors_of_two_versions(data, history):
    graph = load(history)
    ancestors = ancestry(history)
    a, b = data.draw(pairs(history))

    bases = graph.merge_bases(a, b)

    assert set(bases) == best_common_ancestors(ancestors, [a, b])
    assert len(bases) == len(set(bases))
    ranks = [(-graph.generation(base), base) for base in bases]
    assert ranks == sorted(ranks)


@settings(max_examples=200)
@given(data=st.data(), history=histories())
def test_it_finds_the_best_common_ancestors_of_many_versions(data, history):
    graph = load(history)
    ancestors = ancestry(history)
    versions = data.draw(
        st.lists(st.integers(min_value=0, max_value=len(history) - 1), min_size=1, max_size=4)
    )

    bases = graph.merge_bases_of(*versions)

    assert set(bases) == best_common_ancestors(ancestors, versions)
    assert len(bases) == len(set(bases))


@settings(max_examples=300)
@given(data=st.data(), history=histories())
def test_it_lists_what_one_version_has_and_another_lacks(data, history):
    graph = load(history)
    ancestors = ancestry(history)
    a, b = data.draw(pairs(history))

    listed = graph.between(a, b)

    assert set(listed) == ancestors[b] - ancestors[a]
    assert len(listed) == len(set(listed))
    assert graph.between_count(a, b) == len(listed)
    position = {version: index for index, version in enumerate(listed)}
    for version in listed:
        assert all(
            position[version] < position.get(parent, len(listed)) for parent in history[version]
        )


@settings(max_examples=200)
@given(data=st.data(), history=histories())
def test_it_counts_ancestors_and_descendants(data, history):
    graph = load(history)
    ancestors = ancestry(history)
    a, b = data.draw(pairs(history))

    assert graph.ancestor_count(b) == len(ancestors[b])
    assert graph.ancestors(b) == ancestors[b]
    assert graph.is_ancestor(a, b) == (a in ancestors[b])
    assert graph.descendants(a) == {v for v in range(len(history)) if a in ancestors[v]}


@settings(max_examples=200)
@given(data=st.data(), history=histories())
def test_it_draws_a_shortest_path_to_a_merge_base(data, history):
    graph = load(history)
    a, b = data.draw(pairs(history))

    path = graph.path(a, b)

    bases = graph.merge_bases(a, b)
    if not bases:
        assert path is None
        return
    assert path is not None
    assert path.base == bases[0]
    for top, chain in ((a, path.from_a), (b, path.from_b)):
        assert chain[0] == top
        assert chain[-1] == path.base
        assert all(lower in history[upper] for upper, lower in itertools.pairwise(chain))
        assert len(chain) == distance(history, top, path.base) + 1

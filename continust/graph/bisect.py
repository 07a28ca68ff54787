"""Bisecting a version graph: the first version where a property stopped holding.

As ``git bisect`` does: the candidates are the versions the bad version reaches and no
good version reaches. Each step tests the candidate that splits them most evenly (the
one whose candidate ancestors number closest to half), then keeps its ancestors (bad)
or drops them (good), until one is left: the first bad version, whose every candidate
ancestor is good. On linear history that is ``ceil(log2(n))`` tests; across merges it
stays correct because the candidates are a set of the graph, not a line.

Counting a candidate's candidate ancestors is git's trick: a candidate with exactly
one candidate parent has one more than that parent; only merges are walked.

A version that cannot be tested (its state was released by compaction, or the user said
so) is *skipped*, as ``git bisect skip`` does: it stays a candidate, the next best
splitter is tested instead, and when only skipped candidates are left beside the bad
version the answer is the set the first bad version lies in, not one version.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from continust.graph.lineage import VersionGraph

N = TypeVar("N", bound=Hashable)


@dataclass
class Bisection(Generic[N]):
    """The state of a bisection: the candidates left and what was tested."""

    candidates: set[N]
    bad: N
    tested: list[tuple[N, bool]] = field(default_factory=list)
    skipped: list[N] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Nothing is left to test: one candidate, or only skipped ones beside bad."""
        return self.candidates <= {self.bad, *self.skipped}

    @property
    def first_bad(self) -> N | None:
        """The first bad version, once one candidate is left (None while undecided, and
        when skipped candidates leave it open: see ``could_be``)."""
        return next(iter(self.candidates)) if len(self.candidates) == 1 else None

    @property
    def could_be(self) -> set[N]:
        """Where the first bad version lies: the candidates left (one when found)."""
        return set(self.candidates)


def start(graph: VersionGraph[N], good: Iterable[N], bad: N) -> Bisection[N]:
    """Begin a bisection: the versions ``bad`` reaches and no good version reaches."""
    reached = graph.ancestors(bad)
    for version in good:
        reached -= graph.ancestors(version)
    return Bisection(candidates=reached, bad=bad)


def _weights(graph: VersionGraph[N], candidates: set[N]) -> dict[N, int]:
    """Each candidate's number of candidate ancestors, itself included."""
    order = sorted(candidates, key=lambda n: (graph.generation(n), str(n)))
    weights: dict[N, int] = {}
    for node in order:
        inside = [p for p in graph.parents(node) if p in candidates]
        if not inside:
            weights[node] = 1
        elif len(inside) == 1:
            # A parent outside the candidates is an ancestor of a good version, and so is
            # each of its ancestors: only the one candidate parent's ancestry counts.
            weights[node] = weights[inside[0]] + 1
        else:
            weights[node] = len(graph.ancestors(node) & candidates)
    return weights


def next_to_test(graph: VersionGraph[N], bisection: Bisection[N]) -> N | None:
    """The candidate to test next (None when the bisection is done): the one whose
    candidate ancestors are closest to half of the candidates; the bad version itself
    is never tested again."""
    if bisection.done:
        return None
    total = len(bisection.candidates)
    skipped = set(bisection.skipped)
    weights = _weights(graph, bisection.candidates)
    best: N | None = None
    best_score = -1
    for node, weight in sorted(
        weights.items(), key=lambda item: (graph.generation(item[0]), str(item[0]))
    ):
        if node == bisection.bad or node in skipped:
            continue
        score = min(weight, total - weight)
        if score > best_score:
            best, best_score = node, score
    return best


def record(graph: VersionGraph[N], bisection: Bisection[N], version: N, good: bool) -> None:
    """Narrow the candidates by one test's answer."""
    bisection.tested.append((version, good))
    ancestors = graph.ancestors(version)
    if good:
        bisection.candidates -= ancestors
    else:
        bisection.candidates &= ancestors
        bisection.bad = version


def skip(bisection: Bisection[N], version: N) -> None:
    """Leave a candidate untested: it cannot be read, or the user will not have it read."""
    if version not in bisection.skipped:
        bisection.skipped.append(version)


def bisect(
    graph: VersionGraph[N], good: Iterable[N], bad: N, test: Callable[[N], bool | None]
) -> set[N]:
    """Return where the first version that ``test`` finds bad (False) lies, testing as few
    as halving allows: one version, or more when ``test`` could not tell (None) for some.
    ``good`` must pass and ``bad`` fail (the caller checks them)."""
    bisection = start(graph, good, bad)
    while (version := next_to_test(graph, bisection)) is not None:
        answer = test(version)
        if answer is None:
            skip(bisection, version)
        else:
            record(graph, bisection, version, answer)
    return bisection.could_be

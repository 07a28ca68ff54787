"""The version graph of one stream: ancestry, merge bases and ranges.

Queries answer as git does: ``merge_bases`` is ``git merge-base --all A B``,
``ancestor_count`` is ``git rev-list --count A`` and ``between`` is
``git rev-list B ^A``. Like git's revision walks, they visit versions in
decreasing generation order and stop as soon as the answer is settled, so a
query on two nearby versions costs the same whatever the length of the
history behind them.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import networkx as nx

from continust.core.errors import ContinustError, NotFound

N = TypeVar("N", bound=Hashable)

# Paint marks of the generation-ordered walks.
_FROM_A = 1  # reachable from the first version of the query
_FROM_B = 2  # reachable from the second one
_STALE = 4  # below a merge base already found: nothing better lies there
_WANTED = 1  # ``between``: reachable from b
_HIDDEN = 2  # ``between``: reachable from a, so left out


class LineageError(ContinustError):
    """Base of the errors raised by a version graph."""


class VersionNotFound(LineageError, NotFound, LookupError):
    """A version is not in the graph."""


class InvalidVersion(LineageError, ValueError):
    """A version cannot be added: it is already there, or its parents are wrong."""


@dataclass(frozen=True)
class VersionPath(Generic[N]):
    """The way from two versions down to their merge base.

    ``from_a`` runs from ``a`` down to ``base`` and ``from_b`` from ``b`` down to
    ``base``, both ends included, each step going from a version to one of its
    parents.
    """

    base: N
    from_a: tuple[N, ...]
    from_b: tuple[N, ...]


class VersionGraph(Generic[N]):
    """Represent the DAG of one stream's versions.

    Each version is a node; each parent link is an edge, from parent to child.
    Versions are added one at a time, parents before children, and are never
    removed: the graph of a stream is extended as it grows, never rebuilt.
    Each version keeps its parents in their order (the first parent is the
    branch a merge was made on) and its generation number: 0 for a root,
    otherwise 1 + the highest generation of its parents. A stream may have
    several roots.

    Queries do not change the graph and a version's parents and generation
    never change once added, so threads may query while one thread adds
    versions (adding from several threads at once needs the caller's lock).
    A query running while versions are added may or may not see them.
    """

    def __init__(self) -> None:
        self._graph: nx.DiGraph[N] = nx.DiGraph()
        # Each version's attribute dict in the graph (parents, generation,
        # order), indexed again here: the walks read it for every version they
        # visit, and a plain dict is much faster than the graph's node view.
        self._nodes: dict[N, dict[str, Any]] = {}
        self._roots: list[N] = []
        self._heads: dict[N, None] = {}  # an ordered set

    def __repr__(self) -> str:
        return f"<VersionGraph: {len(self)} versions, {len(self._heads)} heads>"

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __iter__(self) -> Iterator[N]:
        """Iterate over the versions in the order they were added."""
        return iter(self._nodes)

    def add(self, node: N, parents: Sequence[N] = (), generation: int | None = None) -> None:
        """Add a version with its parents, in order; the parents must be in the graph.

        The generation number is computed; when one is given (as stored with
        the version), it must match.
        """
        if isinstance(parents, str):
            raise TypeError(f"parents of {node!r} must be a sequence of versions, not a string")
        parents = tuple(parents)
        self._check_new(node, parents)
        expected = 1 + max(self._nodes[p]["generation"] for p in parents) if parents else 0
        if generation is not None and generation != expected:
            raise InvalidVersion(
                f"version {node!r} has generation {generation}, but its parents "
                f"{list(parents)!r} give it generation {expected}"
            )
        order = len(self._graph)
        self._graph.add_node(node, parents=parents, generation=expected, order=order)
        self._graph.add_edges_from((parent, node) for parent in parents)
        self._nodes[node] = self._graph.nodes[node]  # queries see it from here on
        if not parents:
            self._roots.append(node)
        for parent in parents:
            self._heads.pop(parent, None)
        self._heads[node] = None

    def _check_new(self, node: N, parents: tuple[N, ...]) -> None:
        if node in self._graph:
            raise InvalidVersion(f"version {node!r} is already in the graph")
        if node in parents:
            raise InvalidVersion(f"version {node!r} cannot be its own parent")
        if len(set(parents)) != len(parents):
            raise InvalidVersion(f"version {node!r} lists a parent twice: {list(parents)!r}")
        missing = [parent for parent in parents if parent not in self._graph]
        if missing:
            raise InvalidVersion(
                f"parents {missing!r} of version {node!r} are not in the graph; "
                "add parents before their children"
            )

    def _require(self, node: N) -> dict[str, Any]:
        try:
            data = self._nodes[node]
        except KeyError as err:
            raise VersionNotFound(f"version {node!r} is not in the graph") from err
        return data

    # -- the graph itself ---------------------------------------------------

    def parents(self, node: N) -> tuple[N, ...]:
        """Return the parents of a version, in their order."""
        parents: tuple[N, ...] = self._require(node)["parents"]
        return parents

    def children(self, node: N) -> list[N]:
        """Return the children of a version, in the order they were added."""
        self._require(node)
        return list(self._graph.successors(node))

    def generation(self, node: N) -> int:
        """Return the generation number of a version: 0 for a root."""
        generation: int = self._require(node)["generation"]
        return generation

    def roots(self) -> list[N]:
        """Return the versions without parents, in the order they were added."""
        return list(self._roots)

    def heads(self) -> list[N]:
        """Return the versions without children, in the order they were added."""
        return list(self._heads)

    def as_digraph(self) -> nx.DiGraph[N]:
        """Return a read-only view of the graph; edges run from parent to child."""
        return self._graph.copy(as_view=True)

    # -- reachability -------------------------------------------------------

    def ancestors(self, node: N, include_self: bool = True) -> set[N]:
        """Return the versions reachable from a version through its parents.

        The version itself is included unless ``include_self`` is false, as git
        counts it (``git rev-list A``).
        """
        self._require(node)
        nodes = self._nodes
        seen = {node}
        stack = [node]
        while stack:
            for parent in nodes[stack.pop()]["parents"]:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        if not include_self:
            seen.discard(node)
        return seen

    def ancestor_count(self, node: N) -> int:
        """Count the ancestors of a version, itself included (``git rev-list --count A``)."""
        return len(self.ancestors(node))

    def descendants(self, node: N, include_self: bool = True) -> set[N]:
        """Return the versions that reach a version, itself included unless told not to."""
        self._require(node)
        children = self._graph.succ
        seen = {node}
        stack = [node]
        while stack:
            # A snapshot of the children: another thread may be adding some.
            for child in tuple(children[stack.pop()]):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        if not include_self:
            seen.discard(node)
        return seen

    def is_ancestor(self, a: N, b: N) -> bool:
        """Tell whether ``a`` is reachable from ``b`` (``git merge-base --is-ancestor A B``).

        A version is its own ancestor. The walk never goes below the generation
        of ``a``: no ancestor of ``a`` can lead back up to it.
        """
        floor = self._require(a)["generation"]
        if a == b:
            return True
        if floor >= self._require(b)["generation"]:
            return False
        nodes = self._nodes
        seen = {b}
        stack = [b]
        while stack:
            for parent in nodes[stack.pop()]["parents"]:
                if parent == a:
                    return True
                if parent not in seen and nodes[parent]["generation"] > floor:
                    seen.add(parent)
                    stack.append(parent)
        return False

    # -- merge bases --------------------------------------------------------

    def merge_bases(self, a: N, b: N) -> list[N]:
        """Return the best common ancestors of two versions (``git merge-base --all``).

        A common ancestor is best when it is not an ancestor of another common
        ancestor. The list is sorted by generation, highest first, then in the
        order the versions were added; it is empty when the versions share no
        ancestor (they descend from different roots).
        """
        self._require(a)
        self._require(b)
        if a == b:
            return [a]
        return self._paint_down_to_common(a, b)

    def _paint_down_to_common(self, a: N, b: N) -> list[N]:
        """Walk down from both versions, painting what each reaches, as git does.

        A version painted from both sides is a merge base unless it is stale,
        that is below one already found. Versions leave the queue highest
        generation first, and a child's generation is above its parents', so
        a version leaves it once, after every child that could paint it: its
        paint is final then, and an ancestor of a merge base is always stale
        by then. So, unlike git's (whose queue may be ordered by commit dates),
        the bases found need no pruning. The walk stops when only stale
        versions are queued.
        """
        nodes = self._nodes
        paint = {a: _FROM_A, b: _FROM_B}
        queue = [self._oldest_first_key(a), self._oldest_first_key(b)]
        heapq.heapify(queue)
        fresh = 2  # queued versions not stale yet
        bases: list[N] = []
        while fresh:
            node = heapq.heappop(queue)[2]
            mark = paint[node]
            if not mark & _STALE:
                fresh -= 1
                if mark == _FROM_A | _FROM_B:
                    bases.append(node)
                    mark |= _STALE
            for parent in nodes[node]["parents"]:
                old = paint.get(parent, 0)
                new = old | mark
                if new == old:
                    continue
                paint[parent] = new
                if not old:
                    data = nodes[parent]
                    heapq.heappush(queue, (-data["generation"], data["order"], parent))
                    if not new & _STALE:
                        fresh += 1
                elif new & _STALE and not old & _STALE:
                    fresh -= 1
        return bases

    def merge_bases_of(self, *nodes: N) -> list[N]:
        """Return the best common ancestors of all the versions given.

        These are the common ancestors of every version that are not ancestors
        of another such common ancestor (like ``git merge-base --all --octopus``,
        without repeats). Sorted as ``merge_bases``.
        """
        if not nodes:
            raise TypeError("merge_bases_of() needs at least one version")
        for node in nodes:
            self._require(node)
        bases = [nodes[0]]
        for other in nodes[1:]:
            # Each best common ancestor of all is a best one of ``other`` and
            # one of the bases so far; the union may hold redundant ones.
            candidates = dict.fromkeys(
                found for base in bases for found in self.merge_bases(base, other)
            )
            bases = self._independent(candidates)
            if not bases:
                break
        return bases

    def _independent(self, candidates: Iterable[N]) -> list[N]:
        """Return the candidates that are not ancestors of another candidate.

        One walk from all of them down to the lowest generation among them:
        no version below it can lead back up to a candidate.
        """
        wanted = set(candidates)
        if len(wanted) < 2:
            return list(wanted)
        nodes = self._nodes
        floor = min(nodes[node]["generation"] for node in wanted)
        seen: set[N] = set()
        stack = [parent for node in wanted for parent in nodes[node]["parents"]]
        while stack:
            node = stack.pop()
            if node in seen or nodes[node]["generation"] < floor:
                continue
            seen.add(node)
            stack.extend(nodes[node]["parents"])
        return sorted(wanted - seen, key=self._oldest_first_key)

    def path(self, a: N, b: N) -> VersionPath[N] | None:
        """Return the way from ``a`` and from ``b`` down to their merge base.

        When there are several merge bases, take the one of highest generation,
        then the one added first. Each side is a shortest chain of parent links,
        earlier parents preferred. None when the versions share no ancestor.
        """
        bases = self.merge_bases(a, b)
        if not bases:
            return None
        base = bases[0]
        return VersionPath(base=base, from_a=self._descent(a, base), from_b=self._descent(b, base))

    def _descent(self, top: N, base: N) -> tuple[N, ...]:
        """Return a shortest chain of parent links from ``top`` down to ``base``."""
        if top == base:
            return (top,)
        nodes = self._nodes
        floor = nodes[base]["generation"]
        child_of: dict[N, N] = {}
        level = [top]
        while base not in child_of:
            below = []
            for node in level:
                for parent in nodes[node]["parents"]:
                    if parent not in child_of and nodes[parent]["generation"] >= floor:
                        child_of[parent] = node
                        below.append(parent)
            level = below
        chain = [base]
        while chain[-1] != top:
            chain.append(child_of[chain[-1]])
        return tuple(reversed(chain))

    # -- ranges -------------------------------------------------------------

    def between(self, a: N, b: N) -> list[N]:
        """Return the versions reachable from ``b`` and not from ``a`` (``git rev-list B ^A``).

        Newest first: by generation, highest first, then latest added first, so
        every version comes before its parents.
        """
        return list(self._walk_between(a, b))

    def between_count(self, a: N, b: N) -> int:
        """Count the versions ``b`` reaches and ``a`` does not (``git rev-list --count B ^A``)."""
        return sum(1 for _ in self._walk_between(a, b))

    def _walk_between(self, a: N, b: N) -> Iterator[N]:
        """Yield what ``b`` reaches and ``a`` does not, walking down from both.

        As in git's ``limit_list``, what ``a`` reaches is painted hidden and
        the paint spreads down with the walk; it stops once every queued
        version is hidden, for nothing reachable from those is wanted.
        """
        self._require(a)
        self._require(b)
        if a == b:
            return
        nodes = self._nodes
        paint = {a: _HIDDEN, b: _WANTED}
        queue = [self._newest_first_key(a), self._newest_first_key(b)]
        heapq.heapify(queue)
        wanted = 1  # queued versions not hidden
        while wanted:
            node = heapq.heappop(queue)[2]
            mark = paint[node]
            if not mark & _HIDDEN:
                wanted -= 1
                yield node
            for parent in nodes[node]["parents"]:
                old = paint.get(parent, 0)
                new = old | mark
                if new == old:
                    continue
                paint[parent] = new
                if not old:
                    data = nodes[parent]
                    heapq.heappush(queue, (-data["generation"], -data["order"], parent))
                    if not new & _HIDDEN:
                        wanted += 1
                elif new & _HIDDEN and not old & _HIDDEN:
                    wanted -= 1

    def _oldest_first_key(self, node: N) -> tuple[int, int, N]:
        # Highest generation first; the insertion order breaks ties, so
        # versions themselves are never compared.
        data = self._nodes[node]
        return (-data["generation"], data["order"], node)

    def _newest_first_key(self, node: N) -> tuple[int, int, N]:
        data = self._nodes[node]
        return (-data["generation"], -data["order"], node)

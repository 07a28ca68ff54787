"""Lay out an event's causation as a small graph: the chain of causes above it, the tree of
consequences below it, one row per event."""

from __future__ import annotations

from dataclasses import dataclass

from continust.models import Event

ROW = 44
INDENT = 28
RADIUS = 7


@dataclass(frozen=True)
class CauseNode:
    event: Event
    x: float
    y: float
    focus: bool


@dataclass(frozen=True)
class CauseEdge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class CausationGraph:
    nodes: list[CauseNode]
    edges: list[CauseEdge]
    width: float
    height: float


def causation_graph(
    event: Event, chain: list[Event], tree: list[tuple[int, Event]]
) -> CausationGraph:
    """Place the root cause first, then each nearer cause, the event, and its consequences.

    ``chain`` runs from the nearest cause to the root; ``tree`` is the flattened
    consequence tree with depths, the event itself first at depth 0.
    """
    nodes: list[CauseNode] = []
    edges: list[CauseEdge] = []
    x0 = RADIUS + 4
    for index, cause in enumerate(reversed(chain)):
        nodes.append(CauseNode(cause, x0, ROW / 2 + index * ROW, False))
        if index:
            edges.append(CauseEdge(x0, nodes[-2].y, x0, nodes[-1].y))
    parents: list[CauseNode] = []
    for depth, effect in tree:
        y = ROW / 2 + len(nodes) * ROW
        node = CauseNode(effect, x0 + depth * INDENT, y, effect.pk == event.pk)
        if depth == 0 and chain:
            edges.append(CauseEdge(x0, nodes[-1].y, node.x, y))
        elif depth > 0:
            parent = parents[depth - 1]
            edges.append(CauseEdge(parent.x, parent.y, node.x, y))
        del parents[depth:]
        parents.append(node)
        nodes.append(node)
    width = max((n.x for n in nodes), default=0) + 420
    return CausationGraph(nodes, edges, width, len(nodes) * ROW)

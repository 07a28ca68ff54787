"""Causation: why an event happened, and what it caused, across a project's streams."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from continust.models import Event


@dataclass
class Consequence:
    """An event and the events it caused, as a tree."""

    event: Event
    caused: list[Consequence] = field(default_factory=list)


def causes(event: Event, *, limit: int = 1000) -> list[Event]:
    """Return the chain back to the root cause: the event's cause, its cause's cause, ...

    The chain is ordered from the nearest cause to the root cause; causation ids
    point only to earlier events (invariant 6), so it ends.
    """
    chain: list[Event] = []
    current = event
    while current.causation_id is not None and len(chain) < limit:
        cause = (
            Event.objects.select_related("stream")
            .filter(project_id=event.project_id, id=current.causation_id)
            .first()
        )
        if cause is None:
            break
        chain.append(cause)
        current = cause
    return chain


def consequences(event: Event, *, limit: int = 1000) -> Consequence:
    """Return the tree of events caused, directly or not, by ``event`` (at most ``limit``)."""
    root = Consequence(event)
    frontier = deque([root])
    seen = 0
    while frontier and seen < limit:
        level = [frontier.popleft() for _ in range(len(frontier))]
        # Looked up by a child's optional causation_id, which the query makes one of these.
        by_cause: dict[UUID | None, Consequence] = {node.event.id: node for node in level}
        children = (
            Event.objects.select_related("stream")
            .filter(project_id=event.project_id, causation_id__in=list(by_cause))
            .order_by("position")[: limit - seen]
        )
        for child in children:
            node = Consequence(child)
            by_cause[child.causation_id].caused.append(node)
            frontier.append(node)
            seen += 1
    return root


def flatten(tree: Consequence) -> list[tuple[int, Event]]:
    """Return a consequence tree as (depth, event) rows, depth first."""
    rows: list[tuple[int, Event]] = []
    stack = [(0, tree)]
    while stack:
        depth, node = stack.pop()
        rows.append((depth, node.event))
        stack.extend((depth + 1, child) for child in reversed(node.caused))
    return rows

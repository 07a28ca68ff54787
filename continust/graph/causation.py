"""Causation: why an event happened, and what it caused, across a project's streams."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import connection

from continust.models import Event


@dataclass
class Consequence:
    """An event and the events it caused, as a tree."""

    event: Event
    caused: list[Consequence] = field(default_factory=list)


_CAUSES = """
WITH RECURSIVE chain(position, causation_id, depth) AS (
    SELECT e.position, e.causation_id, 1 FROM continust_event e
    WHERE e.project_id = %s AND e.id = %s
  UNION ALL
    SELECT e.position, e.causation_id, c.depth + 1 FROM chain c
    JOIN continust_event e ON e.project_id = %s AND e.id = c.causation_id
    WHERE c.depth < %s
)
SELECT position FROM chain ORDER BY depth
"""

_CONSEQUENCES = """
WITH RECURSIVE tree(id) AS (
    SELECT e.id FROM continust_event e WHERE e.project_id = %s AND e.causation_id = %s
  UNION ALL
    SELECT e.id FROM tree t
    JOIN continust_event e ON e.project_id = %s AND e.causation_id = t.id
)
SELECT COUNT(*) FROM (SELECT id FROM tree LIMIT %s) found
"""


def causes(event: Event, *, limit: int = 1000) -> list[Event]:
    """Return the chain back to the root cause: the event's cause, its cause's cause, ...

    The chain is ordered from the nearest cause to the root cause; causation ids
    point only to earlier events (invariant 6), so it ends. One recursive query walks
    it, and one more loads the events.
    """
    if event.causation_id is None or limit < 1:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _CAUSES, [event.project_id, _uuid(event.causation_id), event.project_id, limit]
        )
        positions = [row[0] for row in cursor.fetchall()]
    found = Event.objects.select_related("stream").in_bulk(positions)
    return [found[p] for p in positions if p in found]


def consequence_count(event: Event, *, limit: int = 1000) -> int:
    """Return how many events ``event`` caused, directly or not (at most ``limit``), in
    one recursive query."""
    with connection.cursor() as cursor:
        cursor.execute(_CONSEQUENCES, [event.project_id, _uuid(event.id), event.project_id, limit])
        (count,) = cursor.fetchone() or (0,)
    return int(count)


def _uuid(value: UUID) -> Any:
    """Return an event id as this database stores it (hex text on SQLite)."""
    return Event._meta.get_field("id").get_db_prep_value(value, connection)


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

"""Fold a branch's first-parent line from its root with one read of the database: the
benchmarks' measure of folding (bench_log.py's part f, bench_store.py).

It reads continust's stored rows and folds them with continust's own reducers, so it
measures what the product's recomputation does, without the product's caching.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from continust.core.errors import InvalidEvent, StateReleased
from continust.graph.cache import graph_for
from continust.log.canonical import from_cursor
from continust.log.folding import MERGE_REDUCER
from continust.log.reducers import ReducerEvent, get_reducer
from continust.models import Branch


def fold_branch(stream: Any, branch: str = "main") -> tuple[Any, int]:
    """Fold a branch's first-parent line from its root, reading events from the database.

    Ordinary versions are folded with their recorded reducer; at a merge version the
    fold takes the merge's stored state (merges are checked by ``verify``). Return the
    state and how many events were folded.
    """
    head = Branch.objects.filter(stream=stream, name=branch).values_list("head_id", flat=True)
    if not head:
        raise InvalidEvent(f"stream {stream.name} has no branch {branch!r}")
    graph = graph_for(stream)
    line = []
    node: int | None = head[0]
    while node is not None:
        line.append(node)
        parents = graph.parents(node)
        node = parents[0] if parents else None
    line.reverse()
    state: Any = {}
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v.reducer, v.reducer_version, e.id, e.type, e.payload, e.actor, s.data "
            "FROM continust_version v JOIN continust_event e ON e.position = v.event_id "
            "LEFT JOIN continust_state s ON s.hash = v.state_id AND v.reducer = %s "
            "WHERE v.id IN (SELECT value FROM " + _id_list(connection.vendor) + ") "
            "ORDER BY v.generation",
            [MERGE_REDUCER, _ids_param(connection.vendor, line)],
        )
        for reducer, version, event_id, type_, payload, actor, merged in cursor:
            if payload is None or payload == "null":
                raise StateReleased(
                    f"branch {branch} passes events whose payloads its "
                    "stream's retention policy released"
                )
            if reducer == MERGE_REDUCER:
                state = from_cursor(merged)
            else:
                state = get_reducer(reducer, version).apply(
                    state,
                    ReducerEvent(
                        id=str(event_id), type=type_, payload=from_cursor(payload), actor=actor
                    ),
                )
            count += 1
    return state, count


def _id_list(vendor: str) -> str:
    return "unnest(%s::bigint[]) AS value" if vendor == "postgresql" else "json_each(%s)"


def _ids_param(vendor: str, ids: list[int]) -> Any:
    return ids if vendor == "postgresql" else json.dumps(ids)

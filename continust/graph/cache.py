"""One cached ``VersionGraph`` per stream, extended with new versions, never rebuilt.

Versions never change, so a graph loaded once stays true; each lookup reads only
the versions added since the last one. The cache is per process and keyed by
the stream's identity and creation time, so a test database that reuses ids
never sees another stream's graph.
"""

from __future__ import annotations

import threading
from datetime import datetime

from continust.graph.lineage import VersionGraph
from continust.graph.parents import parents_in_stream
from continust.models import Stream, Version

_lock = threading.Lock()
_graphs: dict[tuple[int, datetime], tuple[VersionGraph[int], int]] = {}


def graph_for(stream: Stream) -> VersionGraph[int]:
    """Return the stream's version graph, brought up to date with the database."""
    cache_key = (stream.pk, stream.created_at)
    with _lock:
        graph, last_id = _graphs.get(cache_key, (None, 0))
        if graph is None:
            graph = VersionGraph()
        rows = list(
            Version.objects.filter(stream_id=stream.pk, id__gt=last_id)
            .order_by("id")
            .values_list("id", "generation")
        )
        if rows:
            parents = parents_in_stream(stream.pk, after=last_id)
            for version_id, generation in rows:
                if version_id not in graph:
                    graph.add(version_id, parents.get(version_id, ()), generation)
            last_id = rows[-1][0]
        _graphs[cache_key] = (graph, last_id)
        return graph


def forget(stream: Stream) -> None:
    """Drop a stream's cached graph (after a rolled-back write, say)."""
    with _lock:
        _graphs.pop((stream.pk, stream.created_at), None)

"""Plain-dict records of events and versions, as commands, exports and the API print them."""

from __future__ import annotations

from typing import Any

from continust.canonical import timestamp_text
from continust.models import Event, Version


def event_record(event: Event) -> dict[str, Any]:
    """Return an event as a JSON-ready dict."""
    return {
        "id": str(event.id),
        "stream": event.stream.name,
        "position": event.position,
        "seq": event.seq,
        "type": event.type,
        "timestamp": timestamp_text(event.timestamp),
        "payload": event.payload,
        "causation": str(event.causation_id) if event.causation_id else None,
        "correlation": str(event.correlation_id) if event.correlation_id else None,
        "actor": event.actor,
        "hash": event.hash,
    }


def version_record(version: Version, *, parents: list[int] | None = None) -> dict[str, Any]:
    """Return a version as a JSON-ready dict (its state is left out: it can be large)."""
    if parents is None:
        parents = list(version.parent_links.order_by("index").values_list("parent_id", flat=True))
    return {
        "id": version.pk,
        "stream": version.stream.name,
        "branch": version.branch,
        "key": version.key,
        "generation": version.generation,
        "parents": parents,
        "event": str(version.event.id),
        "event_type": version.event.type,
        "state_hash": version.state_id,
        "digest": version.digest,
        "reducer": f"{version.reducer}@{version.reducer_version}",
    }

"""Plain-dict records of events, versions, retention and compactions, as commands, exports
and the API print them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continust.graph.parents import parents_of
from continust.log.canonical import timestamp_text
from continust.log.policy import policy_of
from continust.log.subjects import Revealer
from continust.models import Compaction, Event, Review, Stream, Version
from continust.retention.compaction import footprint
from continust.schemas.registry import Registry
from continust.schemas.upcasting import upcast_payload


def event_record(
    event: Event,
    registry: Registry | None = None,
    revealer: Revealer | None = None,
    *,
    sealed: bool = False,
) -> dict[str, Any]:
    """Return an event as a JSON-ready dict; with the project's ``registry``, its payload
    in its type's newest shape, and the stored one beside it when an upcaster changed it.
    Personal values show as readers see them (``revealer`` shares the keys it read across
    many events of one project); upcasters run on the stored form, before revealing.
    ``sealed`` keeps them sealed, for what leaves the system (webhook deliveries)."""
    revealer = revealer if revealer is not None else Revealer(event.project_id)

    def shown(value: Any) -> Any:
        return value if sealed else revealer.reveal(value)

    read = upcast_payload(registry, event.type, event.payload, event.position)
    record = {
        "id": str(event.id),
        "stream": event.stream.name,
        "position": event.position,
        "seq": event.seq,
        "type": event.type,
        "timestamp": timestamp_text(event.timestamp),
        "payload": shown(read.payload),
        "causation": str(event.causation_id) if event.causation_id else None,
        "correlation": str(event.correlation_id) if event.correlation_id else None,
        "actor": event.actor,
        "hash": event.hash,
    }
    if read.changed:
        record["stored_payload"] = shown(read.stored)
        record["upcast_from"] = read.from_version
    return record


def version_record(version: Version, *, parents: list[int] | None = None) -> dict[str, Any]:
    """Return a version as a JSON-ready dict (its state is left out: it can be large)."""
    if parents is None:
        parents = parents_of(version)
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


def retention_record(stream: Stream) -> dict[str, Any]:
    """Return a stream's policy, in words too, and the bytes its rows take now."""
    policy = policy_of(stream)
    size = footprint(stream)
    return {
        "stream": stream.name,
        "policy": policy.as_dict(),
        "description": policy.describe(),
        "footprint": {
            "events": size.events,
            "versions": size.versions,
            "states": size.states,
            "total": size.total,
        },
    }


def compaction_record(compaction: Compaction) -> dict[str, Any]:
    """Return a compaction as a JSON-ready dict; ``record`` is its audit event's id."""

    def moment(value: datetime | None) -> str | None:
        return timestamp_text(value) if value else None

    record = compaction.record if compaction.record_id else None  # no query when none
    return {
        "id": compaction.pk,
        "stream": compaction.stream.name,
        "status": compaction.status,
        "policy": compaction.policy,
        "upto": compaction.upto,
        "cutoff": moment(compaction.cutoff),
        "requested_by": compaction.requested_by,
        "requested_at": moment(compaction.requested_at),
        "started_at": moment(compaction.started_at),
        "finished_at": moment(compaction.finished_at),
        "phase": compaction.phase,
        "snapshots_stored": compaction.snapshots_stored,
        "states_released": compaction.states_released,
        "payloads_released": compaction.payloads_released,
        "versions_released": compaction.versions_released,
        "runs": compaction.runs,
        "bytes_before": compaction.bytes_before,
        "bytes_after": compaction.bytes_after,
        "error": compaction.error or None,
        "record": str(record.id) if record is not None else None,
    }


def review_record(review: Review, status: str) -> dict[str, Any]:
    """Return a review's summary as the API and the ``reviews`` command list it."""
    return {
        "id": review.pk,
        "stream": review.stream.name,
        "title": review.title,
        "base": review.base_id,
        "head": review.head_id,
        "branch": review.branch,
        "opened_by": review.opened_by,
        "opened_at": timestamp_text(review.opened_at),
        "status": status,
    }

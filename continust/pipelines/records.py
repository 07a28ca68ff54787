"""Pipelines as JSON-ready dicts, for the API and the command line."""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from continust.jobs import leases
from continust.log.canonical import timestamp_text
from continust.models import Event, Pipeline, PipelineCheckpoint


def lag_of(pipeline: Pipeline, head: int | None = None) -> int:
    """Log positions between the pipeline's committed cursor (its slowest source) and the
    log's head."""
    if head is None:
        head = Event.objects.aggregate(head=Max("position"))["head"] or 0
    cursors = [c for c in pipeline.cursor or [] if isinstance(c, dict)]
    at = min((int(c.get("position", 0)) for c in cursors), default=0)
    if len(cursors) < len(pipeline.cursor or []):
        at = 0  # a source that never committed has read nothing
    return max(0, head - at)


def pipeline_record(pipeline: Pipeline, *, head: int | None = None) -> dict[str, Any]:
    """A pipeline: what it runs, whether it runs, and its committed progress."""
    return {
        "name": pipeline.name,
        "definition": pipeline.definition,
        "params": pipeline.params if pipeline.spec is None else None,
        "spec": pipeline.spec,
        "status": pipeline.status,
        "enabled": pipeline.enabled,
        "running": leases.is_live(pipeline),
        "worker": pipeline.worker,
        "error": pipeline.error,
        "checkpoint": {
            "epoch": pipeline.epoch,
            "cursor": pipeline.cursor,
            "committed_at": timestamp_text(pipeline.committed_at)
            if pipeline.committed_at
            else None,
            "pending": PipelineCheckpoint.objects.filter(pipeline=pipeline).count(),
        },
        "lag": lag_of(pipeline, head),
        "events": pipeline.events,
        "results": pipeline.results,
        "late_events": pipeline.late_events,
        "created_at": timestamp_text(pipeline.created_at),
        "created_by": pipeline.created_by,
    }

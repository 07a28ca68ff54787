"""The project's audit trail: one stream per project that records who did what.

Every audited action (a review's events, a retention change, a compaction, a change of
members) is an event appended to the project's ``_audit`` stream, hash-chained like
every other stream, and indexed by an ``AuditRecord`` row. Nothing is edited.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from django.db import transaction

from continust.log.store import NewEvent, append
from continust.models import AuditRecord, Event, Project, Review, Stream

AUDIT_STREAM: Final = "_audit"
# The audit stream's state is its latest record; a review is folded from all of them.
AUDIT_REDUCER: Final = "replace"


def audit_stream(project: Project) -> Stream:
    """Return the project's audit stream, creating it on first use."""
    stream, _ = Stream.objects.get_or_create(
        project=project,
        name=AUDIT_STREAM,
        defaults={"reducer": AUDIT_REDUCER, "reducer_version": 1},
    )
    return stream


def is_audit_stream(stream: Stream) -> bool:
    """Tell whether a stream is its project's audit stream."""
    return stream.name == AUDIT_STREAM


def record(
    project: Project,
    type: str,
    payload: dict[str, Any],
    *,
    actor: str,
    review: Review | None = None,
    causation: uuid.UUID | None = None,
    correlation: uuid.UUID | None = None,
) -> Event:
    """Append one record to the project's audit stream and index it; return its event."""
    with transaction.atomic():
        event = _append_record(
            project,
            NewEvent(
                type=type,
                payload=payload,
                actor=actor,
                causation=causation,
                correlation=correlation,
            ),
        )
        AuditRecord.objects.create(event=event, project=project, review=review)
    return event


def _append_record(project: Project, new: NewEvent) -> Event:
    """Append to the audit stream; the caller indexes the event in the same transaction."""
    stream = audit_stream(project)
    return append(stream, [new], check_types=False).versions[0].event


# -- opening ---------------------------------------------------------------------------

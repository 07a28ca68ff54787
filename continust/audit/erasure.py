"""Erasure that keeps the proof: destroy a data subject's key, and say what it touched.

Personal values are stored sealed with their subject's key (``continust.log.subjects``),
and the hash chain, the states and the digests cover the sealed form. Erasing the subject
destroys the key and keeps its row as the record of the erasure; no event, version or
state changes, so ``verify`` passes as before, while every reader sees ``[erased]`` where
the values were. The erasure is an audit event naming who erased whom and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.dispatch import Signal
from django.utils import timezone

from continust.audit.trail import is_audit_stream, record
from continust.core.errors import AlreadyErased, InvalidEvent, NotFound
from continust.log.canonical import storable
from continust.log.sealing import MARKER, sealed_values
from continust.log.subjects import check_subject, check_subject_member
from continust.models import Event, Project, Stream, SubjectKey

ERASED_EVENT: Final = "subject.erased"
subject_erased = Signal()
"""Sent once an erasure committed, with ``project`` and ``actor``: read models that copied
plain values (projections) rebuild."""
PERSONAL_SET_EVENT: Final = "stream.personal.set"
REASON_MAX: Final = 1000


@dataclass(frozen=True)
class AffectedEvent:
    """An event that holds sealed values of a subject."""

    stream: str
    seq: int
    id: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "seq": self.seq, "id": self.id, "type": self.type}


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the subject, who and why, and the events it redacted."""

    project: str
    subject: str
    erased_at: datetime
    erased_by: str
    reason: str
    events: tuple[AffectedEvent, ...]
    audit_event: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "subject": self.subject,
            "erased_at": self.erased_at.isoformat(),
            "erased_by": self.erased_by,
            "reason": self.reason,
            "audit_event": self.audit_event,
            "events": [event.as_dict() for event in self.events],
        }


def set_personal(stream: Stream, subject_member: str | None, *, actor: str) -> Stream:
    """Encrypt the stream's payloads from now on, naming the member that holds each
    event's data subject (None: stop encrypting); record the change in the audit trail.

    Events already recorded keep the form they were stored in.
    """
    if is_audit_stream(stream):
        raise InvalidEvent("the audit stream is never encrypted")
    after = None if subject_member is None else {"subject": check_subject_member(subject_member)}
    with transaction.atomic():
        locked = Stream.objects.select_for_update().get(pk=stream.pk)
        before = locked.personal
        if before != after:
            locked.personal = after
            locked.save(update_fields=["personal"])
            record(
                stream.project,
                PERSONAL_SET_EVENT,
                {"stream": stream.name, "before": before, "after": after},
                actor=actor,
            )
    stream.personal = after
    return stream


def subject_key(project: Project, subject: str) -> SubjectKey:
    """Return a subject's key row; ``NotFound`` when the project never sealed for it."""
    row = SubjectKey.objects.filter(project=project, subject=check_subject(subject)).first()
    if row is None:
        raise NotFound(f"project {project.slug} has no data subject {subject!r}")
    return row


def affected_events(project: Project, subject: str) -> tuple[AffectedEvent, ...]:
    """Return the events of the project that hold sealed values of the subject, in log
    order. Reads only the events whose payload carries a sealed value at all."""
    rows = (
        Event.objects.filter(project=project)
        .annotate(text=Cast("payload", TextField()))
        .filter(text__contains=MARKER)
        .select_related("stream")
        .order_by("position")
        .only("id", "seq", "type", "payload", "stream__name")
    )
    found = []
    for event in rows.iterator(chunk_size=500):
        if any(sealed["subject"] == subject for sealed in sealed_values(event.payload)):
            found.append(AffectedEvent(event.stream.name, event.seq, str(event.id), event.type))
    return tuple(found)


def erasure_of(project: Project, subject: str) -> Erasure:
    """Return what the erasure of a subject did, read back (the report ``erase`` gave);
    ``NotFound`` unless the subject was erased."""
    row = subject_key(project, subject)
    if row.key is not None or row.erased_at is None:
        raise NotFound(f"data subject {subject!r} of project {project.slug} was not erased")
    audit = (
        Event.objects.filter(project=project, type=ERASED_EVENT, payload__subject=subject)
        .order_by("-position")
        .values_list("id", flat=True)
        .first()
    )
    return Erasure(
        project=project.slug,
        subject=subject,
        erased_at=row.erased_at,
        erased_by=row.erased_by,
        reason=row.erase_reason,
        events=affected_events(project, subject),
        audit_event=str(audit) if audit is not None else "",
    )


def erase(project: Project, subject: str, *, actor: str, reason: str) -> Erasure:
    """Destroy the subject's key and record who erased it and why; return the report.

    An unknown subject raises ``NotFound`` and a subject erased before ``AlreadyErased``;
    neither changes anything.
    """
    check_subject(subject)
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX:
        raise InvalidEvent(f"an erasure needs a reason of 1 to {REASON_MAX} characters")
    try:
        storable(reason)
    except ValueError as err:
        raise InvalidEvent(f"the reason is refused: {err}") from None
    with transaction.atomic():
        row = (
            SubjectKey.objects.select_for_update().filter(project=project, subject=subject).first()
        )
        if row is None:
            raise NotFound(f"project {project.slug} has no data subject {subject!r}")
        if row.key is None:
            raise AlreadyErased(
                f"data subject {subject!r} was already erased "
                f"({row.erased_at.isoformat() if row.erased_at else 'earlier'})"
            )
        events = affected_events(project, subject)
        row.key = None
        row.erased_at = timezone.now()
        row.erased_by = actor
        row.erase_reason = reason
        row.save(update_fields=["key", "erased_at", "erased_by", "erase_reason"])
        audit = record(
            project,
            ERASED_EVENT,
            {"subject": subject, "reason": reason, "events": len(events)},
            actor=actor,
        )
        transaction.on_commit(
            lambda: subject_erased.send(sender=Erasure, project=project, actor=actor)
        )
    return Erasure(
        project=project.slug,
        subject=subject,
        erased_at=row.erased_at,
        erased_by=actor,
        reason=reason,
        events=events,
        audit_event=str(audit.id),
    )

"""Verify a project across workers: one task per stream, one report at the end.

``verify`` checks a project's streams one after another in one process; a large
project takes minutes. ``start`` records a verification with a part per stream and a
task message per part (through the outbox, in the same transaction), so every Celery
worker takes parts side by side. A part is read-only work, so running one twice (the
outbox and the broker deliver at least once) only costs time: the first to finish
records its findings, the others' are dropped. The part that finishes last closes the
verification, under a lock on it, so two parts finishing together cannot both think
the other is still running. A part that fails (the database went away, a bug) is
recorded as finished with the failure as its finding, so the verification still ends,
not ok, naming the stream and the error, rather than waiting forever. ``report`` gives
the same ``Report`` as ``verify``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from continust.audit.integrity import Broken, Report, verify_stream
from continust.core.errors import NotFound
from continust.jobs import outbox
from continust.models import Project, Stream, Verification, VerificationPart

TASK = "continust.verify_stream"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    broken_streams: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def line(self) -> str:
        broken = f", {self.broken_streams} broken" if self.broken_streams else ""
        return f"{self.done}/{self.total} streams verified{broken}"


def start(project: Project, *, actor: str = "") -> Verification:
    """Record a verification of every stream of ``project`` and a task for each."""
    with transaction.atomic():
        streams = list(Stream.objects.filter(project=project).order_by("name"))
        verification = Verification.objects.create(
            project=project, requested_by=actor, streams=len(streams)
        )
        parts = VerificationPart.objects.bulk_create(
            VerificationPart(verification=verification, stream=stream) for stream in streams
        )
        if not parts:
            verification.finished_at = timezone.now()
            verification.save(update_fields=["finished_at"])
        for part in VerificationPart.objects.filter(verification=verification):
            outbox.enqueue(TASK, [part.pk], key=f"verify:{part.pk}")
    return verification


def get(project: Project, verification_id: int) -> Verification:
    try:
        return Verification.objects.get(project=project, pk=verification_id)
    except Verification.DoesNotExist as err:
        raise NotFound(f"project {project.slug} has no verification {verification_id}") from err


def run_part(part_id: int, *, worker: str = "") -> str:
    """Verify one stream of a verification; record what was found unless already done."""
    part = VerificationPart.objects.select_related("stream__project").filter(pk=part_id).first()
    if part is None:
        return "gone"
    if part.finished_at is not None:
        return "done already"
    report = Report()
    failed = False
    try:
        breaks = verify_stream(part.stream, report)
    except Exception as err:  # recorded as the part's finding: never a verification that hangs
        log.exception("verification part %s (stream %s) failed", part.pk, part.stream)
        stream = part.stream
        failed = True
        breaks = [
            Broken(
                project=stream.project.slug,
                stream=stream.name,
                where="stream",
                reason=f"could not be verified: {type(err).__name__}: {err}"[:2000],
            )
        ]
    with transaction.atomic():
        # Lock the verification first: the part that finishes last sees every other one.
        Verification.objects.select_for_update().filter(pk=part.verification_id).first()
        recorded = VerificationPart.objects.filter(pk=part.pk, finished_at__isnull=True).update(
            finished_at=timezone.now(),
            worker=worker,
            events=report.events,
            versions=report.versions,
            head=part.stream.last_hash,
            breaks=[b.as_dict() for b in breaks],
        )
        if not VerificationPart.objects.filter(
            verification_id=part.verification_id, finished_at__isnull=True
        ).exists():
            Verification.objects.filter(pk=part.verification_id, finished_at__isnull=True).update(
                finished_at=timezone.now()
            )
    if not recorded:
        return "done already"
    return "failed" if failed else "verified"


def progress(verification: Verification) -> Progress:
    parts = VerificationPart.objects.filter(verification=verification)
    done = parts.filter(finished_at__isnull=False)
    broken = done.exclude(breaks=[]).count()
    return Progress(done.count(), verification.streams, broken)


def report(verification: Verification) -> Report:
    """The finished parts' findings as one report, streams in name order."""
    result = Report()
    parts = (
        VerificationPart.objects.filter(verification=verification, finished_at__isnull=False)
        .select_related("stream__project")
        .order_by("stream__name")
    )
    for part in parts:
        result.streams += 1
        result.events += part.events
        result.versions += part.versions
        result.heads[f"{part.stream.project.slug}/{part.stream.name}"] = part.head
        result.breaks.extend(Broken(**b) for b in part.breaks)
    return result

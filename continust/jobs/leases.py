"""The one lease protocol of background jobs: claim, fence, renew, release, resend.

A job (a replay, a compaction, a pipeline) is a row of a ``Leased`` model. One
worker at a time holds it:

- ``claim`` is a conditional UPDATE that succeeds only while no live lease holds
  the job: it bumps ``fence`` (the claim's fencing token), sets the lease's expiry,
  the worker's name and the running status, counts the attempt, and returns a
  ``Lease`` carrying the new fence. Two workers never both take a job: the second
  UPDATE finds the lease live and changes no row.
- Every write a holder makes checks its fence: ``hold`` locks the job's row in the
  holder's transaction and raises ``LeaseLost`` unless the fence (and, for kinds
  that say so, the running status) is still the lease's; ``renew`` and ``release``
  are UPDATEs conditioned on the fence. A holder whose lease lapsed and was claimed
  again, or whose job was cancelled or reset, writes nothing more.
- A lease is *live* while its expiry is in the future; a job with a lapsed lease
  (or none) is free to claim.
- ``resend_stale``, an outbox sweep every worker's dispatcher runs, sends again the
  active jobs nobody holds: a worker killed mid-job leaves its lease to lapse, a
  message the broker lost leaves a job waiting; either way the job goes to the
  broker again once its last message is old enough, and the next worker resumes it.

Each kind of job registers a ``Kind`` naming its model, its task, which of its rows
want a worker and its lease and resend delays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from continust.jobs import outbox
from continust.models import Leased

RUNNING = "running"


class LeaseLost(Exception):
    """Another claim holds the job now, or it ended: this holder must write nothing more."""


@dataclass(frozen=True)
class Kind:
    """A kind of leased job: its model, its task and which of its rows want a worker."""

    name: str  # the outbox key's prefix: "replay" makes keys "replay:12"
    model: type[Leased]
    task: str
    # The rows that want a worker (waiting, or running under a lease): claimed and resent.
    active: Q
    lease_seconds: Callable[[], float]
    resend_seconds: Callable[[], float]
    # The status a holder keeps the job in. When set, a job moved out of it (cancelled,
    # failed) is no longer held, whatever its fence.
    fenced_status: str | None = RUNNING
    running: str = RUNNING

    def rows(self) -> QuerySet[Leased]:
        """Every job of this kind."""
        return self.model._default_manager.all()

    def key(self, job: Leased | int) -> str:
        """The outbox key of the job's task messages."""
        return f"{self.name}:{job if isinstance(job, int) else job.pk}"


@dataclass(frozen=True)
class Lease:
    """One claim of a job: the job and the fencing token the claim took."""

    kind: Kind
    pk: int
    fence: int
    expires_at: datetime | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind.name} {self.pk} (token {self.fence})"


_kinds: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Have ``resend_stale`` look after the jobs of ``kind``."""
    _kinds[kind.name] = kind
    return kind


def kinds() -> list[Kind]:
    """The registered kinds, in registration order."""
    return list(_kinds.values())


# -- live and lapsed -------------------------------------------------------------------


def is_live(job: Leased, now: datetime | None = None) -> bool:
    """Tell whether a live lease holds the job."""
    expires = job.lease_expires_at
    return expires is not None and expires > (now or timezone.now())


def lapsed(now: datetime | None = None) -> Q:
    """The jobs no live lease holds: their lease lapsed, or none was ever taken."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now or timezone.now())


def expiry(kind: Kind, now: datetime | None = None) -> datetime:
    """When a lease of ``kind`` taken or renewed now lapses unless renewed again."""
    return (now or timezone.now()) + timedelta(seconds=kind.lease_seconds())


# -- the holder's side -----------------------------------------------------------------


def claim(
    kind: Kind,
    pk: int,
    *,
    worker: str = "",
    where: Q | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> Lease | None:
    """Take the job unless a live lease holds it; return the lease, or None.

    ``where`` says which rows may be claimed (the kind's active ones by default);
    ``changes`` are more columns the claiming UPDATE sets.
    """
    now = now or timezone.now()
    expires = expiry(kind, now)
    with transaction.atomic():
        taken = (
            kind.rows()
            .filter(pk=pk)
            .filter(kind.active if where is None else where)
            .filter(lapsed(now))
            .update(
                fence=F("fence") + 1,
                lease_expires_at=expires,
                worker=worker[:200],
                attempts=F("attempts") + 1,
                **{"status": kind.running, **changes},
            )
        )
        if taken != 1:
            return None
        fence = kind.rows().values_list("fence", flat=True).get(pk=pk)
    return Lease(kind, pk, int(fence), expires)


def claim_many(
    kind: Kind,
    pks: list[int],
    *,
    worker: str,
    where: Q | None = None,
    now: datetime | None = None,
) -> list[Lease]:
    """Take those of the jobs no live lease holds, in one UPDATE; return their leases.

    The same conditional UPDATE as ``claim``, over several rows: each taken row gets a new
    fence. ``worker`` must name this claim alone (a consumer's name and a nonce, say): the
    rows it took are read back by it and the expiry.
    """
    now = now or timezone.now()
    expires = expiry(kind, now)
    with transaction.atomic():
        kind.rows().filter(pk__in=pks).filter(kind.active if where is None else where).filter(
            lapsed(now)
        ).update(
            fence=F("fence") + 1,
            lease_expires_at=expires,
            worker=worker[:200],
            attempts=F("attempts") + 1,
            **{"status": kind.running},
        )
        taken = kind.rows().filter(pk__in=pks, worker=worker[:200], lease_expires_at=expires)
        return [
            Lease(kind, pk, int(fence), expires) for pk, fence in taken.values_list("pk", "fence")
        ]


def _held(lease: Lease) -> Q:
    held = Q(pk=lease.pk, fence=lease.fence)
    if lease.kind.fenced_status is not None:
        held &= Q(status=lease.kind.fenced_status)
    return held


def hold(lease: Lease, *fields: str) -> dict[str, Any]:
    """Lock the job's row in the current transaction and check the lease is still held.

    Return the named fields of the locked row; raise ``LeaseLost`` when another claim
    took the job or it left the running status. Call it first in every transaction
    that writes on the lease's behalf.
    """
    row: dict[str, Any] | None = (
        lease.kind.rows()
        .select_for_update()
        .filter(pk=lease.pk)
        .values("fence", "status", *fields)
        .first()
    )
    if (
        row is None
        or row["fence"] != lease.fence
        or (lease.kind.fenced_status is not None and row["status"] != lease.kind.fenced_status)
    ):
        raise LeaseLost(f"{lease} is no longer held: another claim took it, or it ended")
    return row


def renew(lease: Lease, *, now: datetime | None = None, **changes: Any) -> datetime:
    """Extend the lease (and set ``changes``) if still held; return the new expiry.

    Raise ``LeaseLost`` when it is not held any more: nothing is written then.
    """
    expires = expiry(lease.kind, now)
    renewed = lease.kind.rows().filter(_held(lease)).update(lease_expires_at=expires, **changes)
    if renewed != 1:
        raise LeaseLost(f"{lease} could not be renewed: another claim took it, or it ended")
    return expires


def release(lease: Lease, **changes: Any) -> bool:
    """Let the job go (and set ``changes``, a final status say) if still held.

    Return whether the lease was held; when it was not, nothing is written.
    """
    released: int = lease.kind.rows().filter(_held(lease)).update(lease_expires_at=None, **changes)
    return released == 1


def revoke(kind: Kind, pk: int, **changes: Any) -> None:
    """Take a new token for a job nobody holds (and set ``changes``): no earlier claim's
    holder can write on it afterwards. The caller checks, under the row's lock, that no
    live lease holds it."""
    kind.rows().filter(pk=pk).update(
        fence=F("fence") + 1, lease_expires_at=None, worker="", **changes
    )


# -- the sweep -------------------------------------------------------------------------


def resend_stale(kind: Kind | None = None) -> int:
    """Send again the active jobs nobody holds; return how many were sent.

    For every registered kind (or only ``kind``): a job whose message still waits in
    the outbox is left alone; otherwise it is sent again once its last message is
    older than the kind's resend delay and, for a running job, older than its lapsed
    lease (so a job is sent once per lapse, not once per sweep).
    """
    return sum(_resend(each) for each in ([kind] if kind is not None else kinds()))


def _resend(kind: Kind) -> int:
    now = timezone.now()
    resend_after = now - timedelta(seconds=kind.resend_seconds())
    count = 0
    for job in kind.rows().filter(kind.active).filter(lapsed(now)).order_by("pk"):
        key = kind.key(job)
        if outbox.pending(key) is not None:
            continue
        last = outbox.last_sent(key)
        threshold = resend_after
        if getattr(job, "status", None) == kind.running and job.lease_expires_at is not None:
            threshold = max(threshold, job.lease_expires_at)
        if last is None or last.sent_at is None or last.sent_at < threshold:
            with transaction.atomic():
                outbox.enqueue(kind.task, [job.pk], key=key)
            count += 1
    return count


outbox.register_sweep(resend_stale)

"""Running a projection: one holder, batches whose rows and position commit together.

Exactly once
------------
Each batch is one transaction: read the projection's row and the log after its
position (``continust.read.project_log.read_log``), lock the row and check the lease's
fencing token and that nothing moved meanwhile (``leases.hold``), hand the handled
events to the projection's ``apply``, and move the position past the batch. The rows
and the position commit together or not at all, so a worker killed between (or
during) batches leaves the position at the last batch committed, and the next holder
starts right after it: no event is lost and none is applied twice. A holder whose
lease lapsed and was claimed again is refused by the token and writes nothing.

A batch whose ``apply`` raises is rolled back whole; the projection is left failed
with the error, at the position before the batch, until a user runs or rebuilds it.

Rebuilds
--------
While a rebuild is asked for (``rebuild_generation``), the holder feeds the shadow
generation from its own position instead; the batch that reaches the end of what is
settled in the log also drops the live generation's tables and makes the shadow one
live, in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from continust.core.errors import ContinustError
from continust.jobs import leases, outbox
from continust.jobs.leases import Lease, LeaseLost
from continust.log.subjects import Revealer, readable_event
from continust.models import Projection as ProjectionRow
from continust.models import ProjectionStatus
from continust.projections import registry, tables
from continust.projections.base import Projection
from continust.read.project_log import LogEntry, LogPosition, read_log
from continust.read.wakeups import LogWakeups
from continust.schemas.upcasting import upcast_events

__all__ = ["PROJECTIONS", "TASK", "Outcome", "run_projection", "step"]

log = logging.getLogger(__name__)

TASK = "continust.projection"


class Outcome:
    """How a run ended."""

    CAUGHT_UP = "caught-up"  # read everything settled in the log
    HANDED_OVER = "handed-over"  # its time slice ended; a new message continues it
    STOPPED = "stopped"  # asked to stop (Ctrl-C)
    LOST = "lost"  # somebody else holds it now
    FAILED = "failed"  # apply raised
    SKIPPED = "skipped"  # held by a live lease, or not waiting for a worker
    MISSING = "missing"  # no such projection row


PROJECTIONS = leases.register(
    leases.Kind(
        name="projection",
        model=ProjectionRow,
        task=TASK,
        active=Q(status__in=[ProjectionStatus.WAITING, ProjectionStatus.RUNNING]),
        lease_seconds=lambda: settings.CONTINUST_PROJECTION_LEASE_SECONDS,
        resend_seconds=lambda: settings.CONTINUST_PROJECTION_RESEND_SECONDS,
        # A rebuild asked for while it runs is picked up by the holder, not a fence.
        fenced_status=None,
    )
)

_WATCHED = ("generation", "tx", "position", "rebuild_generation", "rebuild_tx", "rebuild_position")


@dataclass(frozen=True)
class Step:
    """What one batch did: events read, whether the log's settled end was reached, and
    whether a rebuild is still under way."""

    read: int
    caught_up: bool
    rebuilding: bool = False


def step(
    lease: Lease,
    projection: Projection,
    *,
    started: float,
    done: int,
    idle: float = 0.0,
    throttled: float = 0.0,
) -> Step:
    """Apply one batch and move the position past it, in one fenced transaction.

    ``idle`` and ``throttled`` are the seconds the run waited for appends and paused
    since its last batch; they are booked with this batch, and its own time as busy.
    """
    began = time.monotonic()
    with transaction.atomic():
        row = ProjectionRow.objects.select_related("project").get(pk=lease.pk)
        rebuilding = row.rebuild_generation > 0
        after = (
            LogPosition(row.rebuild_tx, row.rebuild_position)
            if rebuilding
            else LogPosition(row.tx, row.position)
        )
        page = read_log(row.project, after, limit=projection.batch_events)
        locked = leases.hold(lease, *_WATCHED)
        if any(locked[name] != getattr(row, name) for name in _WATCHED):
            return Step(0, caught_up=False, rebuilding=rebuilding)  # a rebuild was asked for
        now = timezone.now()
        fields: dict[str, Any] = {"committed_at": now}
        generation = row.rebuild_generation if rebuilding else row.generation
        if generation == 0:
            generation = 1
            tables.create(row, projection, generation)
            fields["generation"] = generation
        handled = [entry for entry in page.entries if projection.wants(entry.event.type)]
        if handled:
            # A projection reads each event in its type's newest registered shape (upcast
            # as stored), its personal values as readers see them: an erasure rebuilds it.
            newest = upcast_events(row.project, [entry.event for entry in handled])
            revealer = Revealer(row.project_id)
            handled = [
                LogEntry(e.at, readable_event(event, revealer))
                for e, event in zip(handled, newest, strict=True)
            ]
            projection.apply(handled, tables.names(row, projection, generation))
        read = len(page.entries)
        elapsed = time.monotonic() - started
        if elapsed > 0 and done + read:
            fields["rate"] = round((done + read) / elapsed, 1)
        if not rebuilding:
            fields.update(tx=page.next.tx, position=page.next.position, events=F("events") + read)
        elif page.caught_up:
            # The shadow generation has everything settled: swap it in now.
            if row.generation:
                tables.drop(row, projection, row.generation)
            fields.update(
                generation=row.rebuild_generation,
                tx=page.next.tx,
                position=page.next.position,
                events=row.rebuild_events + read,
                rebuild_generation=0,
                rebuild_tx=0,
                rebuild_position=0,
                rebuild_events=0,
                rebuilt_at=now,
            )
        else:
            fields.update(
                rebuild_tx=page.next.tx,
                rebuild_position=page.next.position,
                rebuild_events=F("rebuild_events") + read,
            )
        fields.update(
            busy_seconds=F("busy_seconds") + (time.monotonic() - began),
            idle_seconds=F("idle_seconds") + idle,
            throttled_seconds=F("throttled_seconds") + throttled,
        )
        leases.renew(lease, now=now, **fields)
    return Step(read, page.caught_up, rebuilding and not page.caught_up)


def run_projection(
    projection_id: int,
    *,
    worker: str = "",
    slice_seconds: float = 0,
    follow_seconds: float = 0,
    stop: threading.Event | None = None,
    foreground: bool = False,
) -> str:
    """Claim the projection and run it until it has caught up; return the outcome.

    With ``follow_seconds``, a run that has caught up waits for appends
    (``continust.read.wakeups``: LISTEN on PostgreSQL) and goes on, until nothing came
    for that long (``math.inf``: until stopped). A Celery delivery claims only a
    projection waiting for a worker (or whose holder died); ``foreground`` (the command
    line) claims a failed or idle one too.
    """
    if not ProjectionRow.objects.filter(pk=projection_id).exists():
        return Outcome.MISSING
    lease = leases.claim(
        PROJECTIONS, projection_id, worker=worker, where=Q() if foreground else None
    )
    if lease is None:
        return Outcome.SKIPPED
    name = ProjectionRow.objects.values_list("name", flat=True).get(pk=projection_id)
    try:
        projection = registry.get(name)
    except ContinustError as err:
        return _fail(lease, str(err))
    with LogWakeups() as wakeups:
        return _run(lease, projection, wakeups, slice_seconds, follow_seconds, stop)


def _run(
    lease: Lease,
    projection: Projection,
    wakeups: LogWakeups,
    slice_seconds: float,
    follow_seconds: float,
    stop: threading.Event | None,
) -> str:
    projection_id = lease.pk
    started = time.monotonic()
    idle_since: float | None = None
    done = 0
    idle = throttled = 0.0  # waited since the last batch, booked with the next one
    delay = settings.CONTINUST_PROJECTION_BATCH_DELAY_MS / 1000
    while True:
        try:
            result = step(
                lease, projection, started=started, done=done, idle=idle, throttled=throttled
            )
        except LeaseLost as err:
            log.warning("projection %s: %s", projection_id, err)
            return Outcome.LOST
        except (OperationalError, InterfaceError):
            raise  # the database went away: the lease lapses and the sweep sends it again
        except Exception as err:
            log.exception("projection %s failed", projection_id)
            return _fail(lease, f"{type(err).__name__}: {err}")
        done += result.read
        idle = throttled = 0.0
        if delay and result.read:
            paused = time.monotonic()
            time.sleep(delay)
            throttled = time.monotonic() - paused
        if stop is not None and stop.is_set():
            return _release(lease, Outcome.STOPPED)
        if slice_seconds and time.monotonic() - started >= slice_seconds:
            return _release(lease, Outcome.HANDED_OVER)
        if not result.caught_up or result.rebuilding:
            idle_since = None
            continue
        now = time.monotonic()
        idle_since = now if result.read or idle_since is None else idle_since
        if now - idle_since >= follow_seconds:
            return _release(lease, Outcome.CAUGHT_UP)
        # Wait for an append (a hint: the next step reads from the position regardless),
        # a little at a time so that the lease is renewed and a stop is noticed.
        wakeups.wait(min(1.0, follow_seconds - (now - idle_since)))
        idle = time.monotonic() - now


def _release(lease: Lease, outcome: str) -> str:
    with transaction.atomic():
        if outcome == Outcome.HANDED_OVER:
            outbox.enqueue(TASK, [lease.pk], key=PROJECTIONS.key(lease.pk))
            status = ProjectionStatus.WAITING
        else:
            status = ProjectionStatus.IDLE
        if not leases.release(lease, status=status, worker=""):
            transaction.set_rollback(True)
            return Outcome.LOST
    return outcome


def _fail(lease: Lease, error: str) -> str:
    failed = leases.release(
        lease,
        status=ProjectionStatus.FAILED,
        error=error[:4000],
        error_at=timezone.now(),
        worker="",
    )
    return Outcome.FAILED if failed else Outcome.LOST

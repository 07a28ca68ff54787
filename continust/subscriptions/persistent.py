"""Persistent subscriptions: competing consumers, acknowledgements, retries, parking.

A persistent subscription queues the events it reads from its project's log as
messages (``SubscriptionMessage``): ``fill`` reads a page after the subscription's
position and, in one transaction, inserts the page's messages and moves the position
by compare-and-set on the position and the fence, so two consumers filling at once
queue each event once. Any number of consumers then take due messages:

- a consumer claims up to 20 due messages at once under leases of
  ``continust.jobs.leases`` (``claim_many``: one conditional UPDATE that bumps each one's
  fencing token; rows another consumer is claiming are skipped with SKIP LOCKED), so
  one consumer at a time holds each, for the subscription's acknowledgement timeout;
- the handler runs in a savepoint that ends by deleting the message on condition
  that its fence is still the lease's, and the claimed batch commits once: the
  acknowledgement commits with the
  handler's database writes, or neither does (a consumer whose lease lapsed and was
  taken over commits nothing);
- a failure puts the message back, due after ``backoff_seconds * 2**(attempts-1)``
  (capped at ``backoff_max_seconds``), or parks it after ``max_attempts``, with its last
  error. Parked messages wait until someone replays them (``registry.replay_parked``).

A consumer whose process dies leaves its lease to lapse; the message is then due
again and counts the lost delivery as an attempt. Consumers run in a loop that waits
for wake-ups (``continust.read.wakeups``) or the next message due, from the CLI
(``subscription run``) or as Celery tasks (``run_consumer``), each delivery for at
most ``CONTINUST_SUBSCRIPTION_TASK_SECONDS`` before it hands over to a fresh message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from continust.core.errors import ContinustError, InvalidName
from continust.jobs import leases, outbox
from continust.models import (
    MessageStatus,
    Subscription,
    SubscriptionKind,
    SubscriptionMessage,
)
from continust.read.project_log import LogEntry, LogPosition, read_log
from continust.read.wakeups import LogWakeups
from continust.subscriptions import registry
from continust.subscriptions.registry import CONSUME_TASK, Handler

TASK = CONSUME_TASK


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def message_kind(subscription: Subscription) -> leases.Kind:
    """The lease of one message: held for the subscription's acknowledgement timeout."""
    timeout = float(subscription.ack_timeout_seconds)
    return leases.Kind(
        name=f"subscription-message-{subscription.pk}",
        model=SubscriptionMessage,
        task=TASK,
        active=Q(status__in=[MessageStatus.WAITING, MessageStatus.RUNNING]),
        lease_seconds=lambda: timeout,
        resend_seconds=lambda: timeout,
    )


def backoff(subscription: Subscription, attempts: int) -> timedelta:
    """How long a message waits after its ``attempts``-th failed delivery."""
    seconds = subscription.backoff_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, subscription.backoff_max_seconds))


def fill(subscription: Subscription, limit: int = 500) -> int:
    """Queue the next page of the log as messages; return how many were queued."""
    row = Subscription.objects.values("position_tx", "position", "fence").get(pk=subscription.pk)
    after = LogPosition(row["position_tx"], row["position"])
    page = read_log(subscription.project, after, limit=limit, where=registry.where_of(subscription))
    if page.next == after:
        return 0
    now = timezone.now()
    with transaction.atomic():
        moved = Subscription.objects.filter(
            pk=subscription.pk,
            position_tx=after.tx,
            position=after.position,
            fence=row["fence"],
        ).update(
            position_tx=page.next.tx,
            position=page.next.position,
            handled=F("handled") + len(page.entries),
        )
        if moved != 1:
            return 0  # another consumer queued this page, or the subscription was reset
        SubscriptionMessage.objects.bulk_create(
            [
                SubscriptionMessage(
                    subscription_id=subscription.pk,
                    event_id=entry.event.position,
                    log_tx=entry.at.tx,
                    log_position=entry.at.position,
                    due_at=now,
                )
                for entry in page.entries
            ]
        )
    return len(page.entries)


@dataclass
class Outcome:
    """What one round of deliveries did."""

    acknowledged: int = 0
    failed: int = 0
    parked: int = 0
    lost: int = 0  # taken over by another consumer before the acknowledgement

    @property
    def delivered(self) -> int:
        return self.acknowledged + self.failed + self.parked + self.lost


def _due(subscription: Subscription, now: datetime) -> Q:
    return Q(subscription_id=subscription.pk, due_at__lte=now) & (
        Q(status=MessageStatus.WAITING) | Q(status=MessageStatus.RUNNING, lease_expires_at__lte=now)
    )


def deliver_due(
    subscription: Subscription,
    handler: Handler,
    *,
    consumer: str = "",
    limit: int = 20,
    now: datetime | None = None,
) -> Outcome:
    """Claim up to ``limit`` due messages at once (rows other consumers are claiming are
    skipped) and hand each to ``handler``, oldest first."""
    kind = message_kind(subscription)
    at = now or timezone.now()
    with transaction.atomic():
        candidates = list(
            SubscriptionMessage.objects.select_for_update(skip_locked=True)
            .filter(_due(subscription, at))
            .order_by("log_tx", "log_position")
            .values_list("pk", flat=True)[:limit]
        )
        claimed = (
            leases.claim_many(
                kind,
                candidates,
                worker=f"{consumer}~{uuid.uuid4().hex[:8]}",
                where=_due(subscription, at),
                now=at,
            )
            if candidates
            else []
        )
    outcome = Outcome()
    if not claimed:
        return outcome
    held = {lease.pk: lease for lease in claimed}
    messages = list(
        SubscriptionMessage.objects.filter(pk__in=held)
        .select_related("event", "event__stream")
        .order_by("log_tx", "log_position")
    )
    failures: list[tuple[SubscriptionMessage, str]] = []
    # One commit for the batch; each message in a savepoint of its own, so a failure or a
    # lost lease rolls back that message's handler writes only.
    with transaction.atomic():
        for message in messages:
            error = _deliver(held[message.pk], message, handler, outcome)
            if error:
                failures.append((message, error))
    for message, error in failures:
        _failed(subscription, held[message.pk], message, error, outcome, now)
    return outcome


def _deliver(
    lease: leases.Lease,
    message: SubscriptionMessage,
    handler: Handler,
    outcome: Outcome,
) -> str:
    """Handle and acknowledge one message in a transaction (or savepoint) of its own;
    return the handler's error, if it failed."""
    entry = LogEntry(LogPosition(message.log_tx, message.log_position), message.event)
    try:
        with transaction.atomic():
            handler(entry)
            # The acknowledgement, conditioned on the lease's fence as ``leases.hold``
            # checks it: a consumer whose message was taken over deletes nothing and rolls
            # its handler's writes back.
            acknowledged, _ = SubscriptionMessage.objects.filter(
                pk=lease.pk, fence=lease.fence, status=MessageStatus.RUNNING
            ).delete()
            if acknowledged != 1:
                raise leases.LeaseLost(f"{lease} is no longer held")
    except leases.LeaseLost:
        outcome.lost += 1
        return ""
    except Exception as err:  # the handler's failure: nothing it wrote committed
        return f"{type(err).__name__}: {err}"[:4000]
    outcome.acknowledged += 1
    return ""


def _failed(
    subscription: Subscription,
    lease: leases.Lease,
    message: SubscriptionMessage,
    error: str,
    outcome: Outcome,
    now: datetime | None,
) -> None:
    """Put a failed message back after its backoff, or park it after the last attempt."""
    at = now or timezone.now()
    if message.attempts >= subscription.max_attempts:
        if leases.release(
            lease, status=MessageStatus.PARKED, parked_at=at, failed_at=at, last_error=error
        ):
            outcome.parked += 1
    elif leases.release(
        lease,
        status=MessageStatus.WAITING,
        due_at=at + backoff(subscription, message.attempts),
        failed_at=at,
        last_error=error,
        worker="",
    ):
        outcome.failed += 1
    registry.record_error(subscription, f"{message.event.id}: {error}")


def next_due(subscription: Subscription) -> datetime | None:
    """When the next message that is not parked falls due (or its lease lapses)."""
    found = SubscriptionMessage.objects.filter(subscription_id=subscription.pk).exclude(
        status=MessageStatus.PARKED
    )
    waiting = found.filter(status=MessageStatus.WAITING).aggregate(at=Min("due_at"))["at"]
    held = found.filter(status=MessageStatus.RUNNING).aggregate(at=Min("lease_expires_at"))["at"]
    times = [t for t in (waiting, held) if t is not None]
    return min(times) if times else None


def consume(
    subscription: Subscription,
    handler: Handler,
    *,
    consumer: str = "",
    stop: Callable[[], bool] | None = None,
    until_idle: bool = False,
    wait_seconds: float = 1.0,
) -> Outcome:
    """Be one of the subscription's competing consumers until ``stop()`` says so (or,
    with ``until_idle``, until nothing is queued and the log has nothing new)."""
    if subscription.kind != SubscriptionKind.PERSISTENT:
        raise InvalidName(f"{subscription.name!r} is a catch-up subscription: run it instead")
    total = Outcome()
    with LogWakeups() as wakeups:
        while not (stop is not None and stop()):
            queued = fill(subscription)
            round_ = deliver_due(subscription, handler, consumer=consumer)
            for name in ("acknowledged", "failed", "parked", "lost"):
                setattr(total, name, getattr(total, name) + getattr(round_, name))
            if queued or round_.delivered:
                continue
            due = next_due(subscription)
            if until_idle and due is None:
                break
            wait = wait_seconds
            if due is not None:
                wait = max(0.0, min(wait, (due - timezone.now()).total_seconds()))
            if wait > 0:
                wakeups.wait(wait)
    return total


# -- as Celery tasks -------------------------------------------------------------------


def task_seconds() -> float:
    return _setting("CONTINUST_SUBSCRIPTION_TASK_SECONDS", 60)


def run_consumer(subscription_id: int, slot: int, *, worker: str = "") -> str:
    """A worker's consumer: consume for one time slice, then hand over to a fresh message
    while the subscription stays enabled; return how the slice ended."""
    subscription = Subscription.objects.select_related("project").filter(pk=subscription_id).first()
    if subscription is None or subscription.kind != SubscriptionKind.PERSISTENT:
        return "gone"
    if not subscription.enabled:
        return "stopped"
    deadline = time.monotonic() + task_seconds()
    current: dict[str, Handler] = {}

    def stop() -> bool:
        """Each round: end after the slice, or once stopped; take up a changed handler."""
        row = Subscription.objects.filter(pk=subscription_id).values("enabled", "handler").first()
        if row is None or not row["enabled"] or time.monotonic() > deadline:
            return True
        if row["handler"] not in current:
            current.clear()
            current[row["handler"]] = registry.resolve_handler(row["handler"])
        return False

    def handler(entry: LogEntry) -> object:
        (chosen,) = current.values()
        return chosen(entry)

    try:
        consume(subscription, handler, consumer=f"{worker}#{slot}", stop=stop)
    except ContinustError as err:  # its handler cannot be found
        registry.record_error(subscription, err)
        return "no handler"
    with transaction.atomic():
        if Subscription.objects.filter(pk=subscription_id, enabled=True).exists():
            outbox.enqueue(
                TASK, [subscription_id, slot], key=registry.consumer_key(subscription_id, slot)
            )
            return "handed over"
    return "stopped"


def resend_consumers() -> int:
    """The dispatcher's sweep: send again a consumer of an enabled subscription whose
    last message is older than two slices (its worker died, or the broker lost it)."""
    stale = timezone.now() - timedelta(seconds=2 * task_seconds() + 5)
    count = 0
    for subscription in Subscription.objects.filter(
        kind=SubscriptionKind.PERSISTENT, enabled=True
    ).order_by("pk"):
        for slot in range(subscription.consumers):
            key = registry.consumer_key(subscription, slot)
            if outbox.pending(key) is not None:
                continue
            last = outbox.last_sent(key)
            if last is None or last.sent_at is None or last.sent_at < stale:
                with transaction.atomic():
                    outbox.enqueue(TASK, [subscription.pk, slot], key=key)
                count += 1
    return count


outbox.register_sweep(resend_consumers)

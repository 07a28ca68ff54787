"""Catch-up subscriptions: read from the stored position, then follow the log live.

``subscribe(project, name, handler)`` claims the subscription's lease (one subscriber
at a time), then repeats one step: in ONE transaction, read a page of the log after
the position (``continust.read.project_log.read_log``), call the handler on each
event, and store the page's next position with an UPDATE conditioned on the lease's
fencing token (``continust.jobs.leases``), which renews the lease. The handler's own
writes to the database commit with the position that covers them, or roll back with
it: a handler that only writes to the database sees each event's effect exactly once,
across crashes and restarts. Effects outside the database are at least once.

Catching up and following live are the same step: a page that is not full says the
reader has caught up, and the subscriber waits for a wake-up
(``continust.read.wakeups``: LISTEN/NOTIFY on PostgreSQL, a short sleep on SQLite)
before reading again from where it stands, so nothing is missed or repeated however
writers interleave. A handler's failure rolls its page back, is recorded on the
subscription and is retried with exponential backoff; after the subscription's
``max_attempts`` failures in a row the subscriber stops and raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F

from continust.core.errors import ContinustError, InvalidName, NotFound
from continust.jobs import leases
from continust.models import Project, Subscription, SubscriptionKind, SubscriptionStatus
from continust.read.project_log import START, LogFilter, LogPosition, read_log
from continust.read.wakeups import LogWakeups
from continust.subscriptions import registry
from continust.subscriptions.registry import Handler, SubscriptionBusy


class SubscriptionFailed(ContinustError):
    """The handler failed ``max_attempts`` times in a row on the same page."""


@dataclass
class Run:
    """What one run of a subscriber did."""

    handled: int = 0
    pages: int = 0
    failures: int = 0
    position: LogPosition = START


def backoff(subscription: Subscription, failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: doubling, capped."""
    seconds = subscription.backoff_seconds * 2 ** max(0, failures - 1)
    return float(min(seconds, subscription.backoff_max_seconds))


def _batch() -> int:
    return int(getattr(settings, "CONTINUST_SUBSCRIPTION_BATCH", 100))


def claim(subscription: Subscription, worker: str = "") -> leases.Lease:
    """Hold the subscription for this subscriber, or say who holds it."""
    if subscription.kind != SubscriptionKind.CATCH_UP:
        raise InvalidName(
            f"{subscription.name!r} is a persistent subscription: run its consumers instead"
        )
    lease = leases.claim(registry.SUBSCRIBER, subscription.pk, worker=worker)
    if lease is None:
        subscription.refresh_from_db()
        raise SubscriptionBusy(
            f"subscription {subscription.name!r} is held by "
            f"{subscription.worker or 'another subscriber'} until "
            f"{subscription.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return lease


def step(
    subscription: Subscription,
    lease: leases.Lease,
    handler: Handler,
    limit: int,
    after: LogPosition,
) -> tuple[int, bool, LogPosition]:
    """Handle one page after ``after`` in one transaction with the new position; return
    (handled, caught up, position). Raises the handler's error (nothing committed) or
    ``LeaseLost``."""
    with transaction.atomic():
        page = read_log(
            subscription.project, after, limit=limit, where=registry.where_of(subscription)
        )
        for entry in page.entries:
            handler(entry)
        # The checkpoint, conditioned on the lease's fence as ``leases.hold`` checks it; it
        # renews the lease too. A subscriber whose lease was taken over (or whose
        # subscription was reset) stores nothing and rolls its handler's writes back.
        moved = Subscription.objects.filter(
            pk=subscription.pk, fence=lease.fence, status=SubscriptionStatus.RUNNING
        ).update(
            position_tx=page.next.tx,
            position=page.next.position,
            handled=F("handled") + len(page.entries),
            lease_expires_at=leases.expiry(registry.SUBSCRIBER),
        )
        if moved != 1:
            raise leases.LeaseLost(f"{lease} is no longer held")
    return len(page.entries), page.caught_up, page.next


def subscribe(
    project: Project,
    name: str,
    handler: Handler,
    *,
    where: LogFilter | None = None,
    start: LogPosition = START,
    stop: Callable[[], bool] | None = None,
    until_caught_up: bool = False,
    worker: str = "",
    batch: int | None = None,
    wait_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Run:
    """Run the catch-up subscription ``name`` of ``project`` (created from ``where`` and
    ``start`` when it does not exist) until ``stop()`` says so, or until it has caught up
    when ``until_caught_up``; return what it did."""
    try:
        subscription = registry.get_subscription(project, name)
    except NotFound:
        subscription = registry.create_subscription(project, name, where=where, start=start)
    if where is not None and registry.where_of(subscription) != where:
        raise InvalidName(
            f"subscription {subscription.name!r} exists with another filter: reset or "
            "name a new one"
        )
    return run(
        subscription,
        handler,
        stop=stop,
        until_caught_up=until_caught_up,
        worker=worker,
        batch=batch,
        wait_seconds=wait_seconds,
        sleep=sleep,
    )


def run(
    subscription: Subscription,
    handler: Handler,
    *,
    stop: Callable[[], bool] | None = None,
    until_caught_up: bool = False,
    worker: str = "",
    batch: int | None = None,
    wait_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Run:
    """Run an existing catch-up subscription (see ``subscribe``)."""
    lease = claim(subscription, worker)
    subscription.refresh_from_db()
    at = registry.position_of(subscription)
    done = Run(position=at)
    failures = 0
    limit = batch or _batch()
    ended = SubscriptionStatus.IDLE
    try:
        with LogWakeups() as wakeups:
            while not (stop is not None and stop()):
                try:
                    handled, caught_up, at = step(subscription, lease, handler, limit, at)
                except leases.LeaseLost:
                    raise
                except Exception as err:  # the handler's: its page rolled back
                    failures += 1
                    done.failures += 1
                    registry.record_error(subscription, err)
                    if failures >= subscription.max_attempts:
                        raise SubscriptionFailed(
                            f"subscription {subscription.name!r} stopped after {failures} "
                            f"failures in a row: {type(err).__name__}: {err}"
                        ) from err
                    leases.renew(lease)
                    sleep(backoff(subscription, failures))
                    continue
                failures = 0
                done.handled += handled
                done.pages += 1
                if caught_up:
                    if until_caught_up:
                        break
                    wakeups.wait(wait_seconds)
    finally:
        leases.release(lease, status=ended, worker="")
    subscription.refresh_from_db()
    done.position = registry.position_of(subscription)
    return done

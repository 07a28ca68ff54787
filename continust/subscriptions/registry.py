"""Subscriptions as records: create, find, list with their lag, reset, replay parked.

A subscription is named within its project and keeps its log position in the
database (``Subscription``). What a user can ask of one here changes rows only; the
reading and handling is in ``catchup`` and ``persistent``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from continust.core.database import on_postgresql
from continust.core.errors import AlreadyExists, ContinustError, InvalidName, NotFound
from continust.core.parsing import parse_stream_name, storable_text
from continust.jobs import leases, outbox
from continust.models import (
    Event,
    MessageStatus,
    Project,
    Subscription,
    SubscriptionKind,
    SubscriptionMessage,
    SubscriptionStatus,
)
from continust.read.project_log import START, LogEntry, LogFilter, LogPosition

Handler = Callable[[LogEntry], object]

CONSUME_TASK = "continust.subscription_consume"
NAME_MAX = 64


class SubscriptionBusy(ContinustError):
    """The subscription is held by a running subscriber: stop it first."""


def _lease_seconds() -> float:
    return float(getattr(settings, "CONTINUST_SUBSCRIPTION_LEASE_SECONDS", 30))


# A catch-up subscriber holds its subscription's row under this lease while it runs.
SUBSCRIBER = leases.Kind(
    name="subscription",
    model=Subscription,
    task=CONSUME_TASK,
    active=Q(kind=SubscriptionKind.CATCH_UP),
    lease_seconds=_lease_seconds,
    resend_seconds=_lease_seconds,
)


def parse_name(text: str) -> str:
    """A subscription's name: 1 to 64 ASCII letters, digits, hyphens or underscores."""
    storable_text(text, "subscription name")
    trimmed = text.strip()
    if (
        not trimmed
        or len(trimmed) > NAME_MAX
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in trimmed)
    ):
        raise InvalidName(
            f"{trimmed[:40]!r} is not a subscription name (1 to {NAME_MAX} letters, digits, "
            "hyphens or underscores)"
        )
    return trimmed


def resolve_handler(path: str) -> Handler:
    """The function a dotted path (``package.module.function``) names."""
    module_name, _, attribute = path.strip().rpartition(".")
    if not module_name or not attribute:
        raise InvalidName(f"{path[:80]!r} is not a handler (package.module.function)")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, attribute)
    except (ImportError, AttributeError) as err:
        raise NotFound(f"no handler {path[:80]!r}: {err}") from None
    if not callable(handler):
        raise InvalidName(f"{path[:80]!r} is not callable")
    return handler  # type: ignore[no-any-return]


def where_of(subscription: Subscription) -> LogFilter:
    """What the subscription reads of its project's log."""
    return LogFilter(
        stream=subscription.stream, type_prefix=subscription.type_prefix, actor=subscription.actor
    )


def position_of(subscription: Subscription) -> LogPosition:
    return LogPosition(subscription.position_tx, subscription.position)


def create_subscription(
    project: Project,
    name: str,
    *,
    kind: str = SubscriptionKind.CATCH_UP,
    where: LogFilter | None = None,
    start: LogPosition = START,
    handler: str = "",
    max_attempts: int = 5,
    backoff_seconds: float = 1.0,
    backoff_max_seconds: float = 60.0,
    ack_timeout_seconds: float = 30.0,
    consumers: int = 1,
    actor: str = "",
) -> Subscription:
    """Record a subscription that reads the project's log after ``start``."""
    name = parse_name(name)
    if kind not in SubscriptionKind.values:
        raise InvalidName(f"{kind!r} is not a kind of subscription (catch-up or persistent)")
    where = where or LogFilter()
    if where.correlation is not None or where.since is not None or where.until is not None:
        raise InvalidName("a subscription filters by stream, event type prefix and actor only")
    if where.stream:
        parse_stream_name(where.stream)
    for value, what in ((where.type_prefix, "event type prefix"), (where.actor, "actor")):
        storable_text(value, what)
        if len(value) > 200:
            raise InvalidName(f"the {what} is longer than 200 characters")
    if handler:
        resolve_handler(handler)
    if not 1 <= max_attempts <= 1000:
        raise InvalidName("max attempts must be between 1 and 1000")
    if not 0 < backoff_seconds <= backoff_max_seconds <= 86400:
        raise InvalidName("the backoff must be above 0 and at most its maximum (up to a day)")
    if not 0 < ack_timeout_seconds <= 86400:
        raise InvalidName("the acknowledgement timeout must be above 0 and at most a day")
    if not 1 <= consumers <= 64:
        raise InvalidName("consumers must be between 1 and 64")
    try:
        with transaction.atomic():
            return Subscription.objects.create(
                project=project,
                name=name,
                kind=kind,
                handler=handler.strip(),
                stream=where.stream,
                type_prefix=where.type_prefix,
                actor=where.actor,
                position_tx=start.tx,
                position=start.position,
                max_attempts=max_attempts,
                backoff_seconds=backoff_seconds,
                backoff_max_seconds=backoff_max_seconds,
                ack_timeout_seconds=ack_timeout_seconds,
                consumers=consumers,
                created_by=actor[:200],
            )
    except IntegrityError:
        raise AlreadyExists(f"subscription {name!r} already exists in {project.slug}") from None


def get_subscription(project: Project, name: str) -> Subscription:
    name = parse_name(name)
    try:
        return Subscription.objects.select_related("project").get(project=project, name=name)
    except Subscription.DoesNotExist:
        raise NotFound(f"no subscription {name!r} in {project.slug}") from None


@dataclass
class Overview:
    """What the explorer and ``subscription list`` show of a subscription."""

    subscription: Subscription
    position: LogPosition
    lag: int  # events of the log after its position, plus messages not yet acknowledged
    queued: int
    parked: int
    running: bool

    def record(self) -> dict[str, object]:
        s = self.subscription
        return {
            "name": s.name,
            "kind": s.kind,
            "position": str(self.position),
            "lag": self.lag,
            "queued": self.queued,
            "parked": self.parked,
            "handled": s.handled,
            "running": self.running,
            "enabled": s.enabled,
            "filter": {"stream": s.stream, "type_prefix": s.type_prefix, "actor": s.actor},
            "handler": s.handler,
            "max_attempts": s.max_attempts,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at.isoformat() if s.last_error_at else None,
        }


def events_after(project: Project, position: LogPosition) -> int:
    """How many events of the project's log lie after ``position``."""
    events = Event.objects.filter(project=project)
    if on_postgresql():
        events = events.extra(
            where=["(continust_event.tx, continust_event.position) > (%s::text::xid8, %s)"],
            params=[str(position.tx), position.position],
        )
    else:
        events = events.filter(position__gt=position.position)
    return events.count()


def overview(project: Project) -> list[Overview]:
    """Every subscription of the project with its position, lag and parked messages."""
    rows = list(
        Subscription.objects.filter(project=project)
        .select_related("project")
        .annotate(
            queued=Count("messages", filter=~Q(messages__status=MessageStatus.PARKED)),
            parked=Count("messages", filter=Q(messages__status=MessageStatus.PARKED)),
        )
        .order_by("name")
    )
    now = timezone.now()
    found = []
    for s in rows:
        at = position_of(s)
        queued, parked = int(s.queued), int(s.parked)
        running = s.status == SubscriptionStatus.RUNNING and leases.is_live(s, now)
        found.append(Overview(s, at, events_after(project, at) + queued, queued, parked, running))
    return found


def describe(subscription: Subscription) -> Overview:
    for each in overview(subscription.project):
        if each.subscription.pk == subscription.pk:
            return each
    raise NotFound(f"no subscription {subscription.name!r}")


def record_error(subscription: Subscription, error: BaseException | str) -> None:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    Subscription.objects.filter(pk=subscription.pk).update(
        last_error=text[:4000], last_error_at=timezone.now()
    )


# -- reset and replay ------------------------------------------------------------------


@dataclass(frozen=True)
class ResetPlan:
    """What resetting a subscription would do, said before it is done."""

    subscription: Subscription
    to: LogPosition
    again: int  # events after the new position
    dropped: int  # messages not yet acknowledged that the reset drops

    def question(self) -> str:
        s = self.subscription
        text = (
            f"Reset subscription {s.name!r} of {s.project.slug} from {position_of(s)} to "
            f"{self.to}: it will read the {self.again} events after {self.to} again"
        )
        if self.dropped:
            text += f" and drop its {self.dropped} queued and parked messages"
        return text + "."


def plan_reset(subscription: Subscription, to: LogPosition = START) -> ResetPlan:
    dropped = SubscriptionMessage.objects.filter(subscription=subscription).count()
    return ResetPlan(subscription, to, events_after(subscription.project, to), dropped)


def reset(subscription: Subscription, to: LogPosition = START) -> ResetPlan:
    """Move the subscription's position to ``to`` and drop its messages.

    Refused while a subscriber holds it. The reset takes a new fencing token, so a
    subscriber whose lease lapsed, or a consumer queueing events, writes nothing after it.
    """
    plan = plan_reset(subscription, to)
    with transaction.atomic():
        row = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if leases.is_live(row) and row.status == SubscriptionStatus.RUNNING:
            raise SubscriptionBusy(
                f"subscription {row.name!r} is running ({row.worker or 'a subscriber'}): "
                "stop it first"
            )
        if (
            SubscriptionMessage.objects.filter(subscription=row, status=MessageStatus.RUNNING)
            .exclude(leases.lapsed())
            .exists()
        ):
            raise SubscriptionBusy(
                f"a consumer of {row.name!r} is handling a message: stop its consumers first"
            )
        SubscriptionMessage.objects.filter(subscription=row).delete()
        leases.revoke(
            SUBSCRIBER,
            row.pk,
            position_tx=to.tx,
            position=to.position,
            status=SubscriptionStatus.IDLE,
            last_error="",
            last_error_at=None,
        )
    return plan


def parked_messages(subscription: Subscription, limit: int = 100) -> list[SubscriptionMessage]:
    return list(
        SubscriptionMessage.objects.filter(subscription=subscription, status=MessageStatus.PARKED)
        .select_related("event", "event__stream")
        .order_by("log_tx", "log_position")[:limit]
    )


def replay_parked(subscription: Subscription, now: datetime | None = None) -> int:
    """Queue the parked messages again, with their attempts counted afresh; return how many."""
    return SubscriptionMessage.objects.filter(
        subscription=subscription, status=MessageStatus.PARKED
    ).update(
        status=MessageStatus.WAITING,
        attempts=0,
        due_at=now or timezone.now(),
        parked_at=None,
        lease_expires_at=None,
        worker="",
    )


# -- consumers as Celery tasks ---------------------------------------------------------


def consumer_key(subscription: Subscription | int, slot: int) -> str:
    pk = subscription if isinstance(subscription, int) else subscription.pk
    return f"subscription:{pk}:{slot}"


def start_consumers(subscription: Subscription) -> int:
    """Have workers run the persistent subscription's consumers; return how many were asked."""
    if subscription.kind != SubscriptionKind.PERSISTENT:
        raise InvalidName(f"{subscription.name!r} is a catch-up subscription: run it instead")
    if not subscription.handler:
        raise InvalidName(f"{subscription.name!r} has no handler for workers to call")
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(enabled=True)
        for slot in range(subscription.consumers):
            outbox.enqueue(
                CONSUME_TASK, [subscription.pk, slot], key=consumer_key(subscription, slot)
            )
    subscription.enabled = True
    return subscription.consumers


def stop_consumers(subscription: Subscription) -> None:
    """Workers' consumers end after the message they are handling."""
    Subscription.objects.filter(pk=subscription.pk).update(enabled=False)
    subscription.enabled = False

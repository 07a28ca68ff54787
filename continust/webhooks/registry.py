"""What a project's admins do with webhooks: register, pause, resume, rotate the secret,
remove, and redeliver a delivery that was given up. Each change is recorded in the
project's audit stream (never the secret)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F

from continust.audit.trail import record
from continust.core.errors import InvalidName, NotFound
from continust.core.parsing import storable_text
from continust.jobs import outbox
from continust.models import DeliveryStatus, Project, Webhook, WebhookDelivery
from continust.read.project_log import START, LogFilter, LogPosition, read_log
from continust.webhooks import signing, targets
from continust.webhooks.delivery import KIND, due_now
from continust.webhooks.targets import InvalidWebhook

MAX_EVENT_TYPES = 20
EVENT_TYPE_MAX = 200
# Where a new webhook starts reading the project's log: after everything settled now.
NOW = "now"


def matches(event_types: Sequence[str], event_type: str) -> bool:
    """Tell whether an event of ``event_type`` goes to a webhook with these filters."""
    return not event_types or any(event_type.startswith(prefix) for prefix in event_types)


def clean_event_types(event_types: Sequence[str]) -> list[str]:
    """The filters as stored: distinct, non-empty prefixes; InvalidWebhook otherwise."""
    if isinstance(event_types, str):
        raise InvalidWebhook("event type filters are a list of prefixes")
    cleaned: list[str] = []
    for prefix in event_types:
        if not isinstance(prefix, str) or not prefix.strip():
            raise InvalidWebhook("an event type filter is a non-empty prefix")
        prefix = prefix.strip()
        if len(prefix) > EVENT_TYPE_MAX:
            raise InvalidWebhook(f"an event type filter has at most {EVENT_TYPE_MAX} characters")
        try:
            storable_text(prefix, "event type filter")
        except InvalidName as err:
            raise InvalidWebhook(str(err)) from err
        if prefix not in cleaned:
            cleaned.append(prefix)
    if len(cleaned) > MAX_EVENT_TYPES:
        raise InvalidWebhook(f"a webhook has at most {MAX_EVENT_TYPES} event type filters")
    return cleaned


def clean_secret(secret: str | None) -> str:
    """A secret given (checked) or a new one."""
    if secret is None or secret == "":
        return signing.new_secret()
    try:
        signing.key_of(secret)
    except signing.InvalidSecret as err:
        raise InvalidWebhook(str(err)) from err
    return secret


def log_end(project: Project) -> LogPosition:
    """The log position after every event of ``project`` settled now.

    Read outside any transaction that wrote. One read with a filter no event passes
    answers it at once; a reader in its own writing transaction (or an empty log) gets
    ``START`` that way, and then pages through the log instead.
    """
    nothing = LogFilter(until=datetime(1, 1, 2, tzinfo=UTC))
    end = read_log(project, START, limit=1, where=nothing).next
    if end != START:
        return end
    page = read_log(project, START, limit=1000)
    while not page.caught_up:
        page = read_log(project, page.next, limit=1000)
    return page.next


def start_of(project: Project, start: str) -> LogPosition:
    """Where a webhook starts: ``now`` (what is appended from now on), ``0`` (the whole
    log) or a log position ``T.P``."""
    if start == NOW:
        return log_end(project)
    try:
        return LogPosition.parse(start)
    except InvalidName as err:
        raise InvalidWebhook(f"start at 'now', '0' or a log position T.P: {err}") from err


def register(
    project: Project,
    url: str,
    event_types: Sequence[str] = (),
    *,
    secret: str | None = None,
    active: bool = True,
    start: str = NOW,
    actor: str = "",
) -> tuple[Webhook, str]:
    """Register a webhook; return it and its secret (shown to the user once)."""
    targets.check(url)
    types = clean_event_types(event_types)
    chosen = clean_secret(secret)
    at = start_of(project, start)
    with transaction.atomic():
        webhook = Webhook.objects.create(
            project=project,
            url=url,
            event_types=types,
            secret=chosen,
            active=active,
            after_tx=at.tx,
            after_position=at.position,
            created_by=actor[:200],
        )
        _audit(webhook, "webhook.added", actor, event_types=types, active=active, start=str(at))
    return webhook, chosen


def get(project: Project, webhook_id: int) -> Webhook:
    """The project's webhook of that id; NotFound for another project's or none."""
    found = Webhook.objects.select_related("project").filter(pk=webhook_id, project=project)
    webhook = found.first()
    if webhook is None:
        raise NotFound(f"project {project.slug} has no webhook {webhook_id}")
    return webhook


def set_active(webhook: Webhook, active: bool, *, actor: str = "") -> Webhook:
    """Pause (no deliveries are made, the log position waits) or resume (catch up)."""
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(active=active)
        if active:
            # Messages that came while it was paused were dropped: queue the due ones anew.
            WebhookDelivery.objects.filter(
                webhook=webhook, status=DeliveryStatus.PENDING, queued=True
            ).update(queued=False)
        webhook.active = active
        _audit(webhook, "webhook.resumed" if active else "webhook.paused", actor)
    return webhook


def rotate_secret(webhook: Webhook, secret: str | None = None, *, actor: str = "") -> str:
    """Give the webhook a new secret (or the one given); deliveries from now on are
    signed with it. Return it."""
    chosen = clean_secret(secret)
    with transaction.atomic():
        Webhook.objects.filter(pk=webhook.pk).update(secret=chosen)
        webhook.secret = chosen
        _audit(webhook, "webhook.secret_rotated", actor)
    return chosen


def remove(webhook: Webhook, *, actor: str = "") -> int:
    """Delete the webhook with its deliveries and their attempts; return the deliveries."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(webhook=webhook).count()
        _audit(webhook, "webhook.removed", actor, deliveries=count)
        Webhook.objects.filter(pk=webhook.pk).delete()
    return count


def delivery_of(webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    """The webhook's delivery of that id; NotFound otherwise."""
    found = (
        WebhookDelivery.objects.select_related("event__stream", "pipeline")
        .filter(pk=delivery_id, webhook=webhook)
        .first()
    )
    if found is None:
        raise NotFound(f"webhook {webhook.pk} has no delivery {delivery_id}")
    return found


def redeliver(webhook: Webhook, delivery_id: int, *, actor: str = "") -> WebhookDelivery:
    """Try a given-up delivery again, with a fresh count of attempts."""
    with transaction.atomic():
        delivery = delivery_of(webhook, delivery_id)
        again = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=due_now(),
            queued=True,
            attempts=0,
            fence=F("fence") + 1,
            lease_expires_at=None,
        )
        if again != 1:
            raise InvalidWebhook(
                f"delivery {delivery.pk} is {delivery.status}: only a failed one is redelivered"
            )
        outbox.enqueue(KIND.task, [delivery.pk], key=KIND.key(delivery))
        _audit(webhook, "webhook.redelivered", actor, delivery=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _audit(webhook: Webhook, type: str, actor: str, **more: object) -> None:
    record(
        webhook.project,
        type,
        {"webhook": webhook.pk, "url": webhook.url, **more},
        actor=actor,
    )

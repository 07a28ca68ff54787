"""One attempt of a delivery: claim it, POST the signed event, record what happened.

A delivery is a leased job (``continust.jobs.leases``): a worker claims it for one
attempt, so two deliveries of its task message never POST it at once, and a worker
that dies mid-attempt leaves the lease to lapse and the delivery to be sent again.
After the attempt, one transaction that first checks the lease records the attempt
(number, status code, duration, error) and decides:

- a 2xx answer: delivered;
- a network error (timeout, refused connection, a host that does not resolve), a 5xx,
  408 or 429: tried again after an exponential backoff (``CONTINUST_WEBHOOK_BACKOFF_SECONDS``
  doubling per attempt, at most ``CONTINUST_WEBHOOK_BACKOFF_MAX_SECONDS``), or later if a
  429 or 503's ``Retry-After`` says so; given up (failed) after
  ``CONTINUST_WEBHOOK_MAX_ATTEMPTS`` attempts;
- any other answer (a redirect, which is never followed, or another 4xx) or a target
  that resolves to an address webhooks may not reach: failed at once.

A delivery waiting for its retry is due again at ``next_attempt_at``: ``queue_due``, an
outbox sweep, queues its task message then, once. A message that seems lost (a queued
delivery nobody claimed for ``CONTINUST_WEBHOOK_RESEND_SECONDS``, or an attempt whose
worker died, its lease lapsed) is sent again by the leases' sweep. A failed delivery
can be redelivered by an admin.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import certifi
import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from continust.jobs import leases, outbox
from continust.log.canonical import timestamp_text
from continust.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from continust.read.records import event_record
from continust.webhooks import signing, targets

TASK = "continust.webhook_deliver"
USER_AGENT = "continust-webhooks/1"
# What is read of a receiver's answer: its status matters, not its body.
ANSWER_BYTES = 65536
RETRIED_STATUSES = {408, 429}


def _lease_seconds() -> float:
    # An attempt lasts at most the timeout (urllib3's total), then it is recorded.
    return float(settings.CONTINUST_WEBHOOK_TIMEOUT_SECONDS) + 10


KIND = leases.register(
    leases.Kind(
        name="webhook-delivery",
        model=WebhookDelivery,
        task=TASK,
        # What a task message may claim, and what the leases' sweep sends again when its
        # message seems lost: a queued delivery that is due, or one whose worker died
        # mid-attempt (its lease lapsed).
        active=Q(webhook__active=True)
        & (
            Q(status=DeliveryStatus.PENDING, queued=True, next_attempt_at__lte=Now())
            | Q(status=DeliveryStatus.SENDING)
        ),
        lease_seconds=_lease_seconds,
        resend_seconds=lambda: float(settings.CONTINUST_WEBHOOK_RESEND_SECONDS),
        fenced_status=DeliveryStatus.SENDING,
        running=DeliveryStatus.SENDING,
    )
)


def due_now() -> datetime:
    """A ``next_attempt_at`` that is due at once: a millisecond back, as SQLite's clock
    (``Now()``, which claims compare with) reads milliseconds and stored times micro."""
    return timezone.now() - timedelta(milliseconds=1)


def queue_due() -> int:
    """Queue the next attempt of every delivery whose retry fell due; return how many.

    An outbox sweep: every worker's dispatcher runs it each round. The conditional
    UPDATE queues each retry once, however many dispatchers run.
    """
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING,
        queued=False,
        next_attempt_at__lte=Now(),
        webhook__active=True,
    ).order_by("next_attempt_at")
    count = 0
    for pk in list(due.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            taken = WebhookDelivery.objects.filter(
                pk=pk, status=DeliveryStatus.PENDING, queued=False
            ).update(queued=True)
            if taken == 1:
                outbox.enqueue(TASK, [pk], key=KIND.key(pk))
                count += 1
    return count


outbox.register_sweep(queue_due)


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code or an error, and whether to try again."""

    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0
    retry_after: float | None = None
    # The target may not be reached (or the URL is no longer valid): no retry helps.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.status_code is None:
            return not self.refused
        return self.status_code >= 500 or self.status_code in RETRIED_STATUSES


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
    base = float(settings.CONTINUST_WEBHOOK_BACKOFF_SECONDS)
    cap = float(settings.CONTINUST_WEBHOOK_BACKOFF_MAX_SECONDS)
    return min(cap, base * (1 << min(attempt - 1, 30)))


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (a number or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def body_of(delivery: WebhookDelivery) -> bytes:
    """The JSON the receiver gets: the event, its stream and its log position; or a
    pipeline's results of one epoch. Personal values stay sealed: a receiver is beyond the
    reach of an erasure."""
    event = delivery.event
    if event is None:
        pipeline = delivery.pipeline
        document: dict[str, Any] = {
            "type": "pipeline.results",
            "timestamp": timestamp_text(delivery.created_at),
            "data": {
                "project": delivery.webhook.project.slug,
                "pipeline": pipeline.name if pipeline is not None else None,
                "epoch": delivery.epoch,
                "results": delivery.results,
            },
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    document = {
        "type": event.type,
        "timestamp": event_record(event)["timestamp"],
        "data": {
            "project": delivery.webhook.project.slug,
            "position": delivery.position,
            "event": event_record(event, sealed=True),
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def message_id(delivery: WebhookDelivery) -> str:
    """The ``webhook-id``: the same on every attempt of a delivery, for receivers to dedupe."""
    if delivery.event is None:
        return f"msg_{delivery.webhook_id}_results_{delivery.pk}"
    return f"msg_{delivery.webhook_id}_{delivery.event.id}"


def post(target: targets.Target, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
    """POST to an address the target was checked to resolve to; redirects not followed.
    Return the status code and the ``Retry-After`` header."""
    timeout = urllib3.Timeout(total=settings.CONTINUST_WEBHOOK_TIMEOUT_SECONDS)
    address = str(target.addresses[0])
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            address, target.port, timeout=timeout, retries=False, maxsize=1
        )
    try:
        answer = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            answer.read(ANSWER_BYTES)
        finally:
            answer.release_conn()
        return answer.status, answer.headers.get("Retry-After")
    finally:
        pool.close()


def attempt(delivery: WebhookDelivery) -> Outcome:
    """POST the delivery once and say what happened; never raises for the receiver's sake."""
    webhook = delivery.webhook
    body = body_of(delivery)
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = targets.check(webhook.url)
    except targets.Unresolvable as err:
        return Outcome(error=str(err), duration_ms=took())
    except targets.InvalidWebhook as err:  # TargetRefused among them
        return Outcome(error=f"refused: {err}", duration_ms=took(), refused=True)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.headers(webhook.secret, message_id(delivery), body),
    }
    try:
        status, after = post(target, body, headers)
    except Exception as err:  # urllib3's and the socket's errors: the network failed
        return Outcome(error=f"{type(err).__name__}: {err}"[:2000], duration_ms=took())
    wait = retry_after(after) if status in (429, 503) else None
    return Outcome(status_code=status, duration_ms=took(), retry_after=wait)


def run(delivery_id: int, *, worker: str = "") -> str:
    """Make one attempt of a delivery if it is due and nobody holds it; return what became
    of it ("skipped" when it was not to be sent now)."""
    lease = leases.claim(KIND, delivery_id, worker=worker, queued=False)
    if lease is None:
        return "skipped"
    delivery = (
        WebhookDelivery.objects.select_related("webhook__project", "event__stream", "pipeline")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:  # its webhook was removed meanwhile
        return "gone"
    started_at = timezone.now()
    outcome = attempt(delivery)
    return record(lease, delivery, outcome, started_at)


def record(
    lease: leases.Lease, delivery: WebhookDelivery, outcome: Outcome, started_at: Any
) -> str:
    """Record the attempt and decide what comes next, if the lease still holds."""
    now = timezone.now()
    with transaction.atomic():
        try:
            row = leases.hold(lease, "attempts")
        except leases.LeaseLost:
            return "lost"
        number = WebhookAttempt.objects.filter(delivery=delivery).count() + 1
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            ok=outcome.ok,
        )
        common: dict[str, Any] = {
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.ok:
            status = DeliveryStatus.DELIVERED
            leases.release(lease, status=status, delivered_at=now, **common)
        elif outcome.retryable and row["attempts"] < settings.CONTINUST_WEBHOOK_MAX_ATTEMPTS:
            status = DeliveryStatus.PENDING
            wait = backoff(row["attempts"])
            if outcome.retry_after is not None:
                wait = max(wait, min(outcome.retry_after, 86400.0))
            leases.release(
                lease, status=status, next_attempt_at=now + timedelta(seconds=wait), **common
            )
        else:
            status = DeliveryStatus.FAILED
            leases.release(lease, status=status, **common)
    return str(status)

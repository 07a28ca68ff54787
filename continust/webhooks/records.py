"""Webhooks and deliveries as JSON-ready dicts, for the API and the command line."""

from __future__ import annotations

from collections import Counter
from typing import Any

from continust.log.canonical import timestamp_text
from continust.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery


def _when(moment: Any) -> str | None:
    return timestamp_text(moment) if moment is not None else None


def delivery_counts(webhook: Webhook) -> dict[str, int]:
    """How many of the webhook's deliveries are in each status."""
    counts = Counter(
        WebhookDelivery.objects.filter(webhook=webhook).values_list("status", flat=True)
    )
    return {status.value: counts.get(status.value, 0) for status in DeliveryStatus}


def webhook_record(webhook: Webhook) -> dict[str, Any]:
    """A webhook without its secret."""
    return {
        "id": webhook.pk,
        "url": webhook.url,
        "event_types": list(webhook.event_types),
        "active": webhook.active,
        "position": f"{webhook.after_tx}.{webhook.after_position}",
        "created_at": _when(webhook.created_at),
        "created_by": webhook.created_by,
        "deliveries": delivery_counts(webhook),
    }


def attempt_record(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": _when(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "ok": attempt.ok,
    }


def delivery_record(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery with its event's identity (or its pipeline's and epoch's) and every attempt
    made (prefetch ``tries``)."""
    event = delivery.event
    pipeline = delivery.pipeline if event is None else None
    return {
        "id": delivery.pk,
        "webhook": delivery.webhook_id,
        "position": delivery.position,
        "event": {
            "id": str(event.id),
            "type": event.type,
            "stream": event.stream.name,
            "position": event.position,
        }
        if event is not None
        else None,
        "pipeline": {
            "name": pipeline.name,
            "epoch": delivery.epoch,
            "results": len(delivery.results or []),
        }
        if pipeline is not None
        else None,
        "status": delivery.status,
        "next_attempt_at": _when(delivery.next_attempt_at)
        if delivery.status == DeliveryStatus.PENDING
        else None,
        "delivered_at": _when(delivery.delivered_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "attempts": [attempt_record(a) for a in delivery.tries.all()],
    }

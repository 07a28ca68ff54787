"""The dispatcher: each active webhook follows its project's log and turns the events
that match its filters into deliveries, exactly once per event and webhook.

Each step reads a page of the log after the webhook's stored log position
(``continust.read.project_log``, which never passes an event a slower writer commits
behind), then, in one transaction, moves the stored position from where it read to
the page's end (a compare-and-set: it moves only if nobody moved it meanwhile), records
a delivery for each matching event and queues its task message in the outbox. Either
all of that commits or none of it does: a dispatcher that dies in between leaves the
position where it was, and the next one reads the same page again; two dispatchers
reading the same page cannot both move the position, and a (webhook, event) pair has
one delivery at most (a unique constraint).

Every worker's outbox dispatcher runs ``follow_all`` each round (an outbox sweep). A
paused webhook's position waits; once resumed it catches up.
"""

from __future__ import annotations

import logging

from django.db import transaction

from continust.jobs import outbox
from continust.models import Webhook, WebhookDelivery
from continust.read.project_log import LogPosition, read_log
from continust.webhooks.delivery import KIND, due_now
from continust.webhooks.registry import matches

log = logging.getLogger(__name__)

PAGE = 200
PAGES_PER_ROUND = 10


def follow(webhook_id: int, *, pages: int = PAGES_PER_ROUND, page_size: int = PAGE) -> int:
    """Turn up to ``pages`` pages of the webhook's log into deliveries; return how many."""
    recorded = 0
    for _ in range(pages):
        webhook = Webhook.objects.select_related("project").filter(pk=webhook_id).first()
        if webhook is None or not webhook.active:
            return recorded
        at = LogPosition(webhook.after_tx, webhook.after_position)
        page = read_log(webhook.project, at, limit=page_size)
        if not page.entries:
            return recorded
        chosen = [e for e in page.entries if matches(webhook.event_types, e.event.type)]
        with transaction.atomic():
            moved = Webhook.objects.filter(
                pk=webhook.pk, active=True, after_tx=at.tx, after_position=at.position
            ).update(after_tx=page.next.tx, after_position=page.next.position)
            if moved != 1:
                return recorded  # another dispatcher took this page, or it was paused
            now = due_now()
            for entry in chosen:
                delivery = WebhookDelivery.objects.create(
                    webhook=webhook, event=entry.event, position=str(entry.at), next_attempt_at=now
                )
                outbox.enqueue(KIND.task, [delivery.pk], key=KIND.key(delivery))
        recorded += len(chosen)
        if page.caught_up:
            return recorded
    return recorded


def follow_all() -> int:
    """One round over every active webhook; return the deliveries recorded."""
    recorded = 0
    for webhook_id in Webhook.objects.filter(active=True).values_list("pk", flat=True):
        try:
            recorded += follow(webhook_id)
        except Exception:  # one webhook's trouble must not stop the others'
            log.exception("webhooks: following the log for webhook %s failed", webhook_id)
    return recorded


outbox.register_sweep(follow_all)

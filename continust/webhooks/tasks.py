"""The Celery task that makes one attempt of a webhook delivery.

Thin and idempotent: a message for a delivery that is not due, is held by another
worker, was delivered or given up, or whose webhook is paused or removed does nothing.
Importing this module also has the worker's outbox dispatcher follow every webhook's
log (``continust.webhooks.follow``) and send due retries (the leases' sweep).
"""

from __future__ import annotations

from celery import Task

from continust.celery import app
from continust.webhooks import delivery, follow  # noqa: F401  (registers the sweep)


@app.task(
    name=delivery.TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def deliver(self: Task[[int], str], delivery_id: int) -> str:
    """Make one attempt of the delivery if it is due; return what became of it."""
    return delivery.run(delivery_id, worker=self.request.hostname or "")

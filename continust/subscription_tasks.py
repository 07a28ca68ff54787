"""The Celery task that runs one consumer of a persistent subscription.

Thin and idempotent: a delivery for a stopped or deleted subscription does nothing,
and two deliveries for one consumer slot are two competing consumers, which the
message leases keep apart (``continust.subscriptions.persistent``).
"""

from __future__ import annotations

from celery import Task

from continust.celery import app
from continust.subscriptions.persistent import TASK, run_consumer


@app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_subscription_consumer(self: Task[[int, int], str], subscription_id: int, slot: int) -> str:
    """Consume for one time slice, then hand over to a fresh message."""
    return run_consumer(subscription_id, slot, worker=self.request.hostname or "")

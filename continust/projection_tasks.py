"""The Celery task that runs a projection for one project.

Thin and idempotent: a delivery that finds the projection held by a live lease, or not
waiting for a worker, does nothing, and a stale holder cannot commit (fencing,
``continust.projections.runner``). A run lasts at most CONTINUST_PROJECTION_SLICE_SECONDS
and then hands over to a fresh message.
"""

from __future__ import annotations

from celery import Task
from django.conf import settings

from continust.celery import app
from continust.projections import control  # noqa: F401 - registers the outbox sweep
from continust.projections.runner import TASK, run_projection


@app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_projection_task(self: Task[[int], str], projection_id: int) -> str:
    """Run the projection until it has caught up and nothing more came for
    CONTINUST_PROJECTION_FOLLOW_SECONDS (or its time slice ends)."""
    return run_projection(
        projection_id,
        worker=self.request.hostname or "",
        slice_seconds=settings.CONTINUST_PROJECTION_SLICE_SECONDS,
        follow_seconds=settings.CONTINUST_PROJECTION_FOLLOW_SECONDS,
    )

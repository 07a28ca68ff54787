"""The Celery task that runs a pipeline.

The task is thin and idempotent: a delivery that finds the pipeline held by a live
lease, paused or gone does nothing, and a stale delivery cannot commit (fencing,
``continust.pipelines.runner``). A run lasts at most CONTINUST_PIPELINE_SLICE_SECONDS
and then hands over to a fresh message, so no delivery outlives the broker's
visibility timeout and a worker's warm shutdown waits at most that long.
"""

from __future__ import annotations

from celery import Task

from continust.celery import app
from continust.pipelines import options
from continust.pipelines.runner import TASK, run_pipeline


@app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_pipeline_task(self: Task[[int], str], pipeline_id: int) -> str:
    """Run or resume a pipeline for one time slice; return how the run ended."""
    return run_pipeline(
        pipeline_id, worker=self.request.hostname or "", slice_seconds=options.slice_seconds()
    )

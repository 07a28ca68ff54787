"""Celery tasks, and the outbox dispatcher every worker runs beside them.

The tasks are thin: they name a domain function and its arguments. Each is
idempotent, because the outbox delivers at least once and the broker redelivers
a message whose worker died (``acks_late``, ``reject_on_worker_lost``).
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.signals import worker_ready, worker_shutdown

from continust.audit import fanout
from continust.celery import app
from continust.jobs.outbox import Dispatcher
from continust.replays import replay as replays
from continust.retention import compaction

_dispatcher: Dispatcher | None = None


@app.task(
    name=replays.TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_replay(self: Task[[int], str], replay_id: int) -> str:
    """Run or resume a replay; a second delivery finds it held or finished and does nothing."""
    return replays.run(replay_id, worker=self.request.hostname or "")


@app.task(
    name=compaction.TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_compaction(self: Task[[int], str], compaction_id: int) -> str:
    """Run or resume a compaction; a second delivery finds it held or done and does nothing."""
    return str(compaction.run(compaction_id, worker=self.request.hostname or "").status)


@app.task(
    name=fanout.TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def verify_stream(self: Task[[int], str], part_id: int) -> str:
    """Verify one stream of a fanned-out verification; a second delivery does nothing new."""
    return fanout.run_part(part_id, worker=self.request.hostname or "")


@app.task(name=compaction.DUE_TASK, ignore_result=True)
def compact_due() -> int:
    """Celery beat's round: ask for a compaction of every stream that is due one."""
    return len(compaction.request_due())


@worker_ready.connect
def start_dispatcher(**kwargs: Any) -> None:
    """Send the outbox from this worker: requests recorded while the broker was away go out."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher()
        _dispatcher.start()


@worker_shutdown.connect
def stop_dispatcher(**kwargs: Any) -> None:
    global _dispatcher
    if _dispatcher is not None:
        _dispatcher.stop()
        _dispatcher = None

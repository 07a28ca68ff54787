"""The transactional outbox: task messages recorded with the change that asks for them.

A request to run a task is an ``OutboxMessage`` row written in the same transaction
as the user's action, so it cannot be lost: if the transaction commits, the message
exists; if the broker is down, it waits in the database. ``dispatch`` sends unsent
rows and marks them sent. It runs twice over:

- right after the commit that wrote a row (``transaction.on_commit``), best effort:
  a broker that does not answer within a second or so is left for later;
- in every Celery worker, a dispatcher thread (``Dispatcher``, started by
  ``continust.tasks`` when the worker is ready) calls ``dispatch`` and the
  registered sweeps every ``CONTINUST_OUTBOX_INTERVAL_SECONDS``, so messages
  recorded while the broker was down go out as soon as a worker reaches it (one
  sweep, ``continust.jobs.leases.resend_stale``, sends again the jobs nobody holds).

A dispatch takes the rows it sends in one transaction, locked (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite's immediate transactions take the database's write lock),
and marks them sent in it: two dispatchers never send the same row, and each worker's
dispatcher takes rows the others are not sending. Delivery is still at least once: a
dispatcher that dies between the broker's acknowledgement and its commit leaves rows it
sent unmarked, the broker redelivers a task whose worker was lost, and a sweep may send
a message again. The tasks are idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from continust.models import OutboxMessage

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# How long a dispatch may wait for the broker before leaving the rows for later.
CONNECT_TIMEOUT = 2

Sweep = Callable[[], int]
_sweeps: list[Sweep] = []


def enqueue(task: str, args: Sequence[Any] = (), *, key: str = "") -> OutboxMessage:
    """Record a task message in the current transaction; send it once that commits."""
    message = OutboxMessage.objects.create(task=task, args=list(args), key=key)
    transaction.on_commit(dispatch_quietly, robust=True)
    return message


def pending(key: str) -> OutboxMessage | None:
    """Return the unsent message about ``key``, if there is one."""
    return OutboxMessage.objects.filter(key=key, sent_at__isnull=True).order_by("id").first()


def last_sent(key: str) -> OutboxMessage | None:
    """Return the message about ``key`` sent last, if any was."""
    return OutboxMessage.objects.filter(key=key, sent_at__isnull=False).order_by("-sent_at").first()


def dispatch(limit: int = 100) -> int:
    """Send unsent messages, oldest first, and mark them sent; return how many went.

    A broker error stops the round and is recorded on the message it stopped at.
    """
    # Imported here so reading or writing the outbox never loads Celery; only sending does.
    from continust.celery import app

    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True)
            .order_by("id")[:limit]
        )
        return _send(app, rows) if rows else 0


def _send(app: Celery, rows: list[OutboxMessage]) -> int:
    """Send ``rows`` in order, marking each sent; stop at a broker error, recorded on the
    row it stopped at. Runs in the transaction that locked the rows."""
    sent = 0
    current = rows[0]
    try:
        with app.connection_for_write(connect_timeout=CONNECT_TIMEOUT) as conn:
            # kombu documents the intervals as float seconds; celery-types declares int.
            conn.ensure_connection(
                max_retries=1,
                interval_start=0,
                interval_step=0.2,  # type: ignore[arg-type]
                timeout=CONNECT_TIMEOUT,
            )
            for current in rows:
                app.send_task(current.task, args=current.args, connection=conn, retry=False)
                OutboxMessage.objects.filter(pk=current.pk).update(
                    sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
                )
                sent += 1
    except Exception as err:  # any broker failure leaves the row for later
        OutboxMessage.objects.filter(pk=current.pk).update(
            attempts=F("attempts") + 1, last_error=f"{type(err).__name__}: {err}"[:2000]
        )
        log.warning("outbox: the broker did not take %s: %s", current, err)
    return sent


def dispatch_quietly() -> None:
    """Dispatch, logging instead of raising: the caller's change is committed either way."""
    try:
        dispatch()
    except Exception:  # best effort: the worker's dispatcher sends it later
        log.exception("outbox: dispatch after commit failed")


def register_sweep(sweep: Sweep) -> Sweep:
    """Have every worker's dispatcher call ``sweep`` on each round (it returns a count)."""
    if sweep not in _sweeps:
        _sweeps.append(sweep)
    return sweep


def dispatch_round() -> int:
    """Run the registered sweeps, then send what is unsent; return the messages sent."""
    for sweep in list(_sweeps):
        sweep()
    return dispatch()


class Dispatcher:
    """A daemon thread that runs ``dispatch_round`` every few seconds until stopped."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval or settings.CONTINUST_OUTBOX_INTERVAL_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="continust-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1) -> None:
        """Ask the thread to end and wait a moment for it. A round still running when the
        process exits loses nothing: a message sent but not yet marked is sent again by
        the next dispatcher, and every task is idempotent (at-least-once delivery)."""
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                close_old_connections()
                dispatch_round()
            except Exception:  # the database may be away too: try again next round
                log.exception("outbox: dispatch round failed")
                connection.close()
            self._stop.wait(self.interval)
        connection.close()

"""Wake a reader of a project's log when it may have grown.

On PostgreSQL every statement that appends events notifies channel ``continust_log``
with each project's id (migration 0015), so a follower waits on ``LISTEN`` instead of
polling. SQLite has no notifications: a wait there is a short sleep, after which the
follower reads again. Either way a wake-up is only a hint: a follower always re-reads
from its log position (``continust.read.project_log``), so a lost or spurious wake-up
costs a read, never an event.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import psycopg
from django.db import connection

from continust.core.database import on_postgresql

CHANNEL = "continust_log"


class LogWakeups:
    """``with LogWakeups() as wakeups: ... wakeups.wait(5.0)``: one listening connection."""

    def __init__(self, poll_seconds: float = 1.0) -> None:
        self.poll_seconds = poll_seconds
        self._listener: psycopg.Connection[Any] | None = None

    def __enter__(self) -> LogWakeups:
        if on_postgresql():
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._listener = psycopg.connect(**params, autocommit=True)
            self._listener.execute(f"LISTEN {CHANNEL}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def wait(self, timeout: float) -> set[int] | None:
        """Wait up to ``timeout`` seconds for appends; return the projects notified
        (empty: none in time), or None where the database cannot tell (SQLite)."""
        if self._listener is None:
            time.sleep(min(timeout, self.poll_seconds))
            return None
        projects: set[int] = set()
        for note in self._listener.notifies(timeout=timeout, stop_after=1):
            projects.add(int(note.payload))
        # Take whatever else already arrived, without waiting again.
        for note in self._listener.notifies(timeout=0):
            projects.add(int(note.payload))
        return projects

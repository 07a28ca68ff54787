"""Wake a reader of a project's log when it may have grown.

On PostgreSQL every append notifies channel ``continust_log`` with each project's id
(``continust.log.notices``), so a follower waits on ``LISTEN`` instead of polling.
SQLite has no notifications: a wait there is a short sleep, after which the follower
reads again. Either way a wake-up is only a hint: a follower always re-reads
from its log position (``continust.read.project_log``), so a lost or spurious wake-up
costs a read, never an event.

A process holds ONE listening connection however many followers it runs (200 live
feeds in a web worker are 200 followers): the first follower starts a thread that
listens and hands each notification to every follower of the process; the last one to
leave closes it. A follower is registered only once the connection listens, so an
append after it registers always wakes it.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import psycopg
from django.db import connection

from continust.core.database import on_postgresql
from continust.log import notices

CHANNEL = notices.CHANNEL
# How long the listening thread waits for a notification before it checks whether any
# follower is left; also how long the last follower's exit may wait for it to stop.
_TICK_SECONDS = 0.2
_LISTEN_TIMEOUT_SECONDS = 10.0


class LogWakeups:
    """``with LogWakeups() as wakeups: ... wakeups.wait(5.0)``: a follower's wake-ups."""

    def __init__(self, poll_seconds: float = 1.0) -> None:
        self.poll_seconds = poll_seconds
        self._listening = False
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._projects: set[int] = set()

    def __enter__(self) -> LogWakeups:
        if on_postgresql():
            _HUB.join(self, _listener_params())
            self._listening = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._listening:
            _HUB.leave(self)
            self._listening = False

    def wait(self, timeout: float) -> set[int] | None:
        """Wait up to ``timeout`` seconds for appends; return the projects notified
        (empty: none in time), or None where the database cannot tell (SQLite)."""
        if not self._listening:
            time.sleep(min(timeout, self.poll_seconds))
            return None
        self._event.wait(timeout)
        with self._lock:
            projects, self._projects = self._projects, set()
            self._event.clear()
        return projects

    def _notify(self, project: int | None) -> None:
        """From the listening thread: ``project`` was appended to (None: maybe any)."""
        with self._lock:
            if project is not None:
                self._projects.add(project)
            self._event.set()


def _listener_params() -> dict[str, Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


class _Hub:
    """The process's one listening connection and the followers it wakes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._followers: set[LogWakeups] = set()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._params: dict[str, Any] = {}

    def join(self, follower: LogWakeups, params: dict[str, Any]) -> None:
        with self._lock:
            self._followers.add(follower)
            if self._thread is None or not self._thread.is_alive() or params != self._params:
                if self._thread is not None and self._thread.is_alive():
                    # Another database (a test run's): wake everyone; the old thread ends.
                    self._wake_all(None)
                self._params = params
                self._listening = threading.Event()
                self._thread = threading.Thread(
                    target=self._run,
                    args=(params, self._listening),
                    daemon=True,
                    name="continust-log-listener",
                )
                self._thread.start()
            listening = self._listening
        if not listening.wait(_LISTEN_TIMEOUT_SECONDS):
            self.leave(follower)
            raise RuntimeError("could not LISTEN for appends to the log")

    def leave(self, follower: LogWakeups) -> None:
        with self._lock:
            self._followers.discard(follower)
            thread = self._thread if not self._followers else None
        if thread is not None and thread is not threading.current_thread():
            # The last follower: let the thread close its connection before going on (a
            # test database is dropped right after its last follower leaves).
            thread.join(_TICK_SECONDS * 5)

    def _run(self, params: dict[str, Any], listening: threading.Event) -> None:
        try:
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute(f"LISTEN {CHANNEL}")
                listening.set()
                while True:
                    for note in listener.notifies(timeout=_TICK_SECONDS):
                        self._wake_all(int(note.payload))
                    with self._lock:
                        if not self._followers or self._params is not params:
                            if self._thread is threading.current_thread():
                                self._thread = None
                            return
        except psycopg.Error:
            # The connection broke: every follower re-reads; the next to join listens anew.
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            self._wake_all(None)

    def _wake_all(self, project: int | None) -> None:
        with self._lock:
            followers = list(self._followers)
        for follower in followers:
            follower._notify(project)


_HUB = _Hub()

"""A real Celery worker in a subprocess, for tests marked ``worker``.

    @pytest.mark.worker
    @pytest.mark.django_db(transaction=True)
    def test_it_replays(start_worker):
        worker = start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="10")
        ...
        worker.kill()  # SIGKILL, the whole process group

``start_worker`` runs ``celery -A continust.celery worker`` against the test database
(its name goes to the worker in ``DATABASE_URL``; tests must commit, hence
``transaction=True``) and the broker of the settings: Redis when
``CELERY_BROKER_URL`` says so, else kombu's filesystem transport under
``CONTINUST_VAR_DIR`` (one per xdist process, see continust/settings_test.py). Each test
process sends to and consumes from its own queue, so messages left over by another run,
or sent by the other xdist process, cannot reach this one's worker. Workers are stopped,
all at once, at the end of the test.

Kept free of Django imports at module level; the worker imports ``fold_refusing``
from here when a test names it in ``CONTINUST_REDUCERS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60
# One per test process (pytest-xdist runs several): "gw0", "gw1", or "main" without xdist.
SESSION_QUEUE = (
    f"continust-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:12]}"
)

# Quick settings for the worker: small chunks, short leases, a busy dispatcher.
WORKER_DEFAULTS = {
    "CONTINUST_REPLAY_CHUNK_EVENTS": "50",
    "CONTINUST_REPLAY_LEASE_SECONDS": "3",
    "CONTINUST_REPLAY_RESEND_SECONDS": "3",
    "CONTINUST_OUTBOX_INTERVAL_SECONDS": "1",
}


# Reducers for tests, registered as "replaytest" (never as a newer "merge", which every
# stream created afterwards would pick up); a worker gets them from CONTINUST_REDUCERS.
TEST_REDUCERS = "replaytest:1=tests.worker.fold_merging,replaytest:3=tests.worker.fold_refusing"


def fold_merging(state: Any, event: Any) -> Any:
    """replaytest@1: the merge reducer."""
    from continust.documents.diff import apply_merge_patch

    return apply_merge_patch(state, event.payload)


def fold_refusing(state: Any, event: Any) -> Any:
    """replaytest@3: the merge reducer, except that it refuses events of type "boom"."""
    if event.type == "boom":
        raise ValueError("boom events are refused")
    return fold_merging(state, event)


def database_url() -> str:
    """Return a URL naming the test database the current test is connected to."""
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(config["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.skip("the SQLite test database lives in memory; a worker cannot open it")
        return f"sqlite:///{name}"
    user = quote(str(config.get("USER") or ""))
    password = quote(str(config.get("PASSWORD") or ""))
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{quote(str(config['NAME']))}"


class Worker:
    """One ``celery worker`` process group, its log and its environment."""

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.env = env
        self.log = log
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "continust.celery",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=1",
                    "--pool=prefork",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{self.name}@%h",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while " ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the worker did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """Kill the worker and its pool processes at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Shut the worker down warmly; kill it if it lingers."""
        self.ask_to_stop()
        self.wait_stopped()

    def ask_to_stop(self) -> None:
        """Start a warm shutdown: the main process finishes the task at hand, then stops its
        pool. Only the main process gets SIGTERM: a pool process signalled too would die
        at once and the main process would spend seconds on the pool process it lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15) -> None:
        """Wait for a stop asked for; kill the process group if it lingers or leaves
        pool processes behind."""
        if self.process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        # ProcessLookupError: the group is gone, every pool process ended too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def _clear_queue(queue: str) -> None:
    from continust.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)
            conn.default_channel.queue_purge(queue)
            conn.default_channel.queue_delete(queue)
    except Exception:  # nothing to clean when the broker or the queue is gone
        pass


def _prepare_broker() -> None:
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def worker_queue() -> Iterator[str]:
    """Route this session's task messages to a queue of its own."""
    from continust.celery import app

    _prepare_broker()
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = SESSION_QUEUE
    yield SESSION_QUEUE
    app.conf.task_default_queue = previous
    _clear_queue(SESSION_QUEUE)


@pytest.fixture(scope="session")
def celery_app_baseline(worker_queue: str) -> tuple[dict[str, Any], str | None]:
    """The Celery app's configuration every test starts from, the session's queue included."""
    from continust.celery import app

    return dict(app.conf.changes), os.environ.get("CELERY_BROKER_URL")


@pytest.fixture(autouse=True)
def celery_app_restored(celery_app_baseline: tuple[dict[str, Any], str | None]) -> None:
    """Give each test the Celery app as the session configured it.

    A test may point the app at an unreachable broker, and undoing its patches is not
    enough: ``app.conf.broker_url`` reads ``CELERY_BROKER_URL`` first, so a patch taken
    after ``setenv`` saves the patched value as the one to restore. Restoring when the
    next test starts also runs after every teardown of the test before, whatever their
    order.
    """
    from continust.celery import app

    changes, environ = celery_app_baseline
    if dict(app.conf.changes) == changes and os.environ.get("CELERY_BROKER_URL") == environ:
        return
    app.conf.changes.clear()
    app.conf.changes.update(changes)
    if environ is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = environ
    # Pooled connections and producers opened meanwhile would still reach the old broker.
    app.close()


@pytest.fixture
def start_worker(
    transactional_db: Any, worker_queue: str, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers on the test database; each keyword overrides a setting of the worker."""
    started: list[Worker] = []
    url = database_url()

    def start(**overrides: str) -> Worker:
        env = {**os.environ, **WORKER_DEFAULTS, **overrides}
        env.update(
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="continust.settings",
            DJANGO_SECRET_KEY=env.get("DJANGO_SECRET_KEY", "insecure-test-key"),
            CONTINUST_TASK_QUEUE=worker_queue,
            PYTHONPATH=str(ROOT),
        )
        name = f"worker{len(started) + 1}"
        worker = Worker(env, tmp_path / f"{name}.log", f"{name}-{uuid.uuid4().hex[:6]}")
        started.append(worker)
        return worker.start()

    yield start
    # Stopped together: each stop takes a moment, and they need not wait for one another.
    for worker in started:
        worker.ask_to_stop()
    for worker in started:
        worker.wait_stopped()
        # Shown by pytest only when the test failed.
        print(f"--- {worker.name} log (tail) ---\n{worker.output()[-4000:]}")


def poll(
    row: Any,
    condition: Callable[[Any], bool],
    *,
    timeout: float,
    describe: Callable[[Any], str],
    interval: float = 0.1,
) -> Any:
    """Refresh ``row`` until ``condition(row)`` holds and return it; after ``timeout``
    seconds fail, saying where the row got to with ``describe(row)``."""
    deadline = time.monotonic() + timeout
    while True:
        row.refresh_from_db()
        if condition(row):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(describe(row))
        time.sleep(interval)

"""Replays on PostgreSQL: one worker end to end against raw COPY of the same rows, two workers
against one, and how soon a committed chunk shows on the progress page.

    .venv/bin/python bench/bench_replay.py [--events 1000000] [--pair 200000] [--chunk 5000]

It builds (once; later runs reuse them) a stream of ``--events`` events, one branch, in the
benchmark database (BENCH_DATABASE_URL, created if missing), then:

1. starts one Celery worker (``celery -A continust.celery worker``, concurrency 1) and replays the
   whole stream into a shadow branch, timed from the request to the replay's last commit,
   versions written included;
2. COPYs the same number of version rows (and their parent links) into the same tables, in
   transactions of ``--chunk`` rows like the replay, from rows built beforehand: the floor
   for writing that many versions;
3. replays ``--pair`` events with one worker, then two replays of ``--pair`` events of two
   streams at once with two workers;
4. replays ``--pair`` events once more while a thread polls the replay page's progress
   fragment (the view the browser polls every second, here every 50 ms) and records, for each
   chunk, the time from its commit to the fragment showing it.

The broker is CELERY_BROKER_URL (Redis for the reported numbers); each run uses a queue of
its own. Numbers go to stdout and bench/out/.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

from common import ROOT, median, percentile, report, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_replay"
QUEUE = f"bench-replay-{uuid.uuid4().hex[:8]}"
BUILD_CHUNK = 20_000


def payload(n: int) -> dict:
    return {"n": n, "account": f"acct-{n % 97}", "amount": n % 1000}


def ensure_stream(project, name: str, events: int):
    """Return a stream of ``events`` events on main, building it with Batch if missing."""
    from django.db import transaction

    from continust.log.folding import fold_event
    from continust.log.projects import create_stream
    from continust.log.store import Batch, NewEvent, lock_stream, move_branch
    from continust.models import Stream

    stream = Stream.objects.filter(project=project, name=name).first()
    if stream is not None and stream.event_count == events:
        return stream
    if stream is not None:
        name = f"{name}-{uuid.uuid4().hex[:6]}"
    stream = create_stream(project, name)
    started = time.perf_counter()
    state: dict = {}
    head = None
    for first in range(0, events, BUILD_CHUNK):
        count = min(BUILD_CHUNK, events - first)
        with transaction.atomic():
            locked = lock_stream(stream)
            batch = Batch(locked)
            batch.reserve(count, count)
            for n in range(first, first + count):
                event = batch.add_event(NewEvent("deposited", payload(n)))
                state = fold_event(
                    "merge",
                    1,
                    state,
                    event_id=str(event.id),
                    type="deposited",
                    payload=event.payload,
                )
                head = batch.add_version(
                    event,
                    [head] if head is not None else [],
                    state,
                    reducer="merge",
                    reducer_version=1,
                    branch="main",
                )
            written = batch.commit()
            head = written[-1]
            move_branch(locked, "main", head, reason="append")
        print(f"  built {first + count:,}/{events:,} events of {name}", file=sys.stderr)
    print(
        f"  {name}: {events / (time.perf_counter() - started):,.0f} events/s to build",
        file=sys.stderr,
    )
    stream.refresh_from_db()
    return stream


class Worker:
    """A ``celery worker`` subprocess on the benchmark database and queue."""

    def __init__(self, url: str, name: str, chunk: int) -> None:
        self.log = ROOT / "bench" / "out" / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "continust.settings",
            "DJANGO_SECRET_KEY": "bench",
            "CONTINUST_TASK_QUEUE": QUEUE,
            "CONTINUST_REPLAY_CHUNK_EVENTS": str(chunk),
            "PYTHONPATH": str(ROOT),
        }
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as out:
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
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{name}-{uuid.uuid4().hex[:6]}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while " ready." not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def wait_done(replays_: list, poll: float = 0.05) -> float:
    """Wait for every replay to finish; return the wall time when the last one did."""
    while True:
        for replay in replays_:
            replay.refresh_from_db()
        if all(r.finished for r in replays_):
            failed = [r for r in replays_ if r.status != "done"]
            if failed:
                raise RuntimeError(f"replay {failed[0].pk}: {failed[0].status} {failed[0].error}")
            return time.perf_counter()
        time.sleep(poll)


class ProgressWatcher(threading.Thread):
    """Poll the replay page's progress fragment; time each chunk from commit to page."""

    def __init__(self, path: str, user) -> None:
        super().__init__(daemon=True)
        from django.test import Client

        self.client = Client()
        self.client.force_login(user)
        self.path = path
        self.latencies: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        from django.db import connection

        seen = -1
        try:
            while not self.halt.is_set():
                body = self.client.get(self.path, headers={"HX-Request": "true"}).content.decode()
                observed = datetime.now(UTC)
                done = int(re.search(r'data-done="(\d+)"', body).group(1))
                stamp = re.search(r'data-progress-at="([^"]*)"', body).group(1)
                if done != seen and stamp:
                    if seen >= 0:
                        made = datetime.fromisoformat(stamp)
                        self.latencies.append((observed - made).total_seconds())
                    seen = done
                time.sleep(0.05)
        finally:
            connection.close()


def bench_one_worker(url: str, stream, chunk: int) -> dict:
    from continust.replays.replay import start_replay

    worker = Worker(url, "bench-one", chunk)
    try:
        started = time.perf_counter()
        replay = start_replay(stream, end="main")
        requested = time.perf_counter()
        ended = wait_done([replay])
    finally:
        worker.stop()
    run_seconds = (replay.finished_at - replay.started_at).total_seconds()
    return {
        "replay": replay,
        "events": replay.total,
        "seconds": ended - started,
        "request_seconds": requested - started,
        "run_seconds": run_seconds,
    }


def bench_raw_copy(replay, chunk: int) -> float:
    """COPY as many version rows (each naming its parent, as the replay's do) as the replay
    wrote; return rows/s."""
    from django.db import connection, transaction

    from continust.log.rows import reserve_ids
    from continust.models import Version

    rows = list(
        Version.objects.filter(stream=replay.stream, branch=replay.shadow_branch)
        .order_by("id")
        .values_list("event_id", "state_id", "generation", "digest")
    )
    stamp = datetime.now(UTC).isoformat()
    branch = f"bench/raw-copy-{replay.pk}"
    previous = None
    chunks = []
    for first in range(0, len(rows), chunk):
        chunks.append(rows[first : first + chunk])
    started = time.perf_counter()
    for part in chunks:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            ids = reserve_ids(Version, len(part))
            lines = []
            for vid, (event, state, generation, digest) in zip(ids, part, strict=True):
                parent = "\\N" if previous is None else previous
                lines.append(
                    f"{vid}\t{replay.stream_id}\t{event}\t{state}\t{parent}\t{generation}\t"
                    f"{digest}\t\\N\t{branch}\tmerge\t1\t{stamp}\n"
                )
                previous = vid
            versions = "".join(lines)
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(
                    "COPY continust_version (id, stream_id, event_id, state_id, first_parent_id, "
                    "generation, digest, key, branch, reducer, reducer_version, created_at) "
                    "FROM STDIN"
                ) as copy,
            ):
                copy.write(versions)
    return len(rows) / (time.perf_counter() - started)


def bench_workers(
    url: str, streams: list, starts: list, chunk: int, user=None
) -> tuple[float, list[float]]:
    """Replay each stream (from its start) with one worker per replay; return events/s.

    With ``user``, a thread polls the first replay's progress fragment meanwhile and the
    chunks' commit-to-page latencies come back too.
    """
    from django.db import transaction
    from django.urls import reverse

    from continust.replays.replay import start_replay

    workers = [Worker(url, f"bench-pair-{n}", chunk) for n in range(len(streams))]
    watcher = None
    try:
        # One transaction: the messages go out together after it, so the workers start
        # together; each worker's run (its own planning included) is timed by the database.
        with transaction.atomic():
            replays_ = [
                start_replay(s, start=first, end="main")
                for s, first in zip(streams, starts, strict=True)
            ]
        if user is not None:
            first = replays_[0]
            watcher = ProgressWatcher(
                reverse("replay", args=[first.stream.project.slug, first.stream_id, first.pk]), user
            )
            watcher.start()
        wait_done(replays_)
    finally:
        if watcher is not None:
            watcher.halt.set()
            watcher.join(10)
        for worker in workers:
            worker.stop()
    seconds = (
        max(r.finished_at for r in replays_) - min(r.started_at for r in replays_)
    ).total_seconds()
    return sum(r.total for r in replays_) / seconds, watcher.latencies if watcher else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--pair", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args()
    url = setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    from django.contrib.auth.models import User

    from continust.celery import app
    from continust.log.projects import add_member, create_project
    from continust.models import Project, Role, Version

    app.conf.task_default_queue = QUEUE
    project = Project.objects.filter(slug="bench-replay").first() or create_project("bench-replay")
    user = User.objects.filter(username="bench").first() or User.objects.create_user("bench")
    add_member(project, user, Role.ADMIN)
    ledger = ensure_stream(project, f"ledger-{args.events}", args.events)
    pair = ensure_stream(project, f"pair-{args.pair}", args.pair)

    one = bench_one_worker(url, ledger, args.chunk)
    events_per_s = one["events"] / one["seconds"]
    copy_rows_per_s = bench_raw_copy(one["replay"], args.chunk)

    main_line = list(
        Version.objects.filter(stream=ledger, branch="main")
        .order_by("id")
        .values_list("id", flat=True)
    )
    tail_start = main_line[len(main_line) - args.pair - 1]
    single, _ = bench_workers(url, [pair], [None], args.chunk)
    double, _ = bench_workers(url, [pair, ledger], [None, tail_start], args.chunk)
    # Apart from the throughput runs: the poller takes CPU of its own.
    _, latencies = bench_workers(url, [pair], [None], args.chunk, user)
    latencies = latencies or [float("nan")]
    rows = [
        (
            f"replay of {one['events']:,} events, 1 worker, request to last commit",
            f"{events_per_s:,.0f} events/s",
            f"{one['seconds']:.1f} s (request "
            f"{one['request_seconds']:.1f} s, worker {one['run_seconds']:.1f} s)",
        ),
        (
            f"raw COPY of {one['events']:,} version rows + parent links, {args.chunk:,} a "
            "transaction",
            f"{copy_rows_per_s:,.0f} rows/s",
            f"replay / COPY = {events_per_s / copy_rows_per_s:.2f}",
        ),
        (f"{args.pair:,} events, 1 worker (claim to last commit)", f"{single:,.0f} events/s", ""),
        (
            f"2 × {args.pair:,} events of two streams, 2 workers (first claim to last commit)",
            f"{double:,.0f} events/s",
            f"2 workers / 1 = {double / single:.2f}",
        ),
        (
            f"progress: chunk commit to the page fragment ({len(latencies)} chunks)",
            f"p50 {median(latencies) * 1000:.0f} ms",
            f"p95 {percentile(latencies, 95) * 1000:.0f}"
            f" ms, max {max(latencies) * 1000:.0f} ms (+ up to 1 s: the page polls every second)",
        ),
    ]
    report("Replays on PostgreSQL", rows, ("measure", "result", "notes"))


if __name__ == "__main__":
    main()

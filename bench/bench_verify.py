"""Verifying a project: one process against the fan-out on one and on two Celery workers.

    .venv/bin/python bench/bench_verify.py [--streams 8] [--events 5000] [--rounds 3]

It builds (once; later runs reuse it) a project of ``--streams`` streams of ``--events``
events each, appended with continust's own ``append`` in batches of 1,000, then ANALYZEs
(this server runs with autovacuum off). Then, ``--rounds`` times, interleaved:

(a) ``verify(project)`` in this process (``continust.audit.integrity``), timed end to end;
(b) ``fanout.start(project)`` with ONE worker process (``celery worker --concurrency 1``)
    on a queue of this run's own, timed from just before ``start`` to the verification's
    ``finished_at`` (written by the part that finishes last);
(c) the same with TWO worker processes (the second started before the round, stopped
    after it).

Each fanned-out report is checked against (a)'s: same streams, events, versions, heads,
no breaks. The load average (1 minute) is read before each measurement and printed beside
it. The broker is CELERY_BROKER_URL (Redis for the reported numbers); the database
BENCH_DATABASE_URL (default ``continust_bench_verify``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import ROOT, median, report, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_verify"
QUEUE = f"bench-verify-{uuid.uuid4().hex[:8]}"
BATCH = 1_000
SLUG = "bench-verify"


def load() -> float:
    return os.getloadavg()[0]


def build(streams: int, events: int):
    """Return the benchmark project, appending what is missing."""
    from django.db import connection

    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append
    from continust.models import Project, Stream

    project = Project.objects.filter(slug=SLUG).first() or create_project(SLUG)
    built = False
    for s in range(streams):
        name = f"s{s:02d}"
        stream = Stream.objects.filter(project=project, name=name).first()
        if stream is None:
            stream = create_stream(project, name)
        started = time.perf_counter()
        while stream.event_count < events:
            count = min(BATCH, events - stream.event_count)
            first = stream.event_count
            append(
                stream,
                [
                    NewEvent("deposited", {"n": n, "account": f"acct-{n % 97}", "amount": n % 1000})
                    for n in range(first, first + count)
                ],
            )
            stream.refresh_from_db()
            built = True
        if built:
            rate = events / (time.perf_counter() - started)
            print(f"  {name}: {events:,} events ({rate:,.0f}/s to append)", file=sys.stderr)
    if Stream.objects.filter(project=project).count() != streams:
        raise SystemExit(f"project {SLUG} has streams beyond --streams {streams}: use a fresh db")
    if built:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return project


class Worker:
    """A ``celery worker`` subprocess (concurrency 1) on the benchmark database and queue."""

    def __init__(self, url: str, name: str) -> None:
        self.log = ROOT / "bench" / "out" / f"verify-{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "continust.settings",
            "DJANGO_SECRET_KEY": "bench",
            "CONTINUST_TASK_QUEUE": QUEUE,
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
                    "--pool=prefork",
                    "-Q",
                    QUEUE,
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
                self.stop()
                raise RuntimeError(self.log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def part_seconds(self) -> list[float]:
        """How long each part this worker verified took, from its log (a second delivery
        of a part already finished answers 'done already' and is left out)."""
        text = self.log.read_text(errors="replace")
        return [
            float(x)
            for x in re.findall(r"verify_stream\[[^]]*\] succeeded in ([0-9.]+)s: 'verified'", text)
        ]

    def repeats(self) -> int:
        """Deliveries of a part already finished (the outbox sends at least once)."""
        return self.log.read_text(errors="replace").count("succeeded in", 0) - len(
            re.findall(r"succeeded in [0-9.]+s: 'verified'", self.log.read_text(errors="replace"))
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def backend_cpu() -> float:
    """CPU seconds of this process's PostgreSQL backend so far (same host, /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_single(project) -> tuple[float, object, float]:
    """Verify in this process; return the wall seconds, the report and the CPU seconds
    spent on it (this process and its PostgreSQL backend)."""
    from continust.audit.integrity import verify

    cpu = time.process_time() + backend_cpu()
    started = time.perf_counter()
    result = verify(project)
    seconds = time.perf_counter() - started
    return seconds, result, time.process_time() + backend_cpu() - cpu


def run_fanout(project, timeout: float) -> tuple[float, object, set[str]]:
    """Start a fanned-out verification; wait for its finished_at; return seconds from the
    start to it, the report and the workers that recorded parts."""
    from django.utils import timezone

    from continust.audit import fanout
    from continust.models import VerificationPart

    started = timezone.now()
    verification = fanout.start(project, actor="bench")
    deadline = time.monotonic() + timeout
    while True:
        verification.refresh_from_db()
        if verification.finished_at is not None:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"verification {verification.pk} not finished after {timeout:.0f} s: "
                f"{fanout.progress(verification).line()}"
            )
        time.sleep(0.05)
    seconds = (verification.finished_at - started).total_seconds()
    workers = set(
        VerificationPart.objects.filter(verification=verification).values_list("worker", flat=True)
    )
    return seconds, fanout.report(verification), workers


def same(a, b) -> list[str]:
    """What differs between two reports (empty: the same findings)."""
    wrong = []
    for name in ("streams", "events", "versions", "heads"):
        if getattr(a, name) != getattr(b, name):
            wrong.append(f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}")
    if a.breaks or b.breaks:
        wrong.append(f"breaks: {len(a.breaks)} / {len(b.breaks)}")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    url = setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    from continust.celery import app

    app.conf.task_default_queue = QUEUE
    project = build(args.streams, args.events)

    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    loads: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    parts: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    cpu: list[float] = []
    problems: list[str] = []
    first = Worker(url, "w1")
    try:
        for r in range(args.rounds):
            loads["a"].append(load())
            seconds, single, used = run_single(project)
            times["a"].append(seconds)
            cpu.append(used)
            print(
                f"round {r + 1} (a) one process: {seconds:.2f} s, load {loads['a'][-1]:.2f}, "
                f"{used:.2f} CPU s (Python + PostgreSQL)"
            )

            loads["b"].append(load())
            before, again = len(first.part_seconds()), first.repeats()
            seconds, fanned, workers = run_fanout(project, args.timeout)
            times["b"].append(seconds)
            parts["b"].append(median(first.part_seconds()[before:]))
            problems += [f"round {r + 1} (b) {w}" for w in same(single, fanned)]
            print(
                f"round {r + 1} (b) one worker: {seconds:.2f} s, load {loads['b'][-1]:.2f}, "
                f"parts by {len(workers)} worker(s), median part {parts['b'][-1]:.2f} s, "
                f"{first.repeats() - again} repeated deliveries"
            )

            before, again = len(first.part_seconds()), first.repeats()
            second = Worker(url, "w2")
            try:
                loads["c"].append(load())
                seconds, fanned, workers = run_fanout(project, args.timeout)
            finally:
                second.stop()
            parts["c"].append(median(first.part_seconds()[before:] + second.part_seconds()))
            repeated = first.repeats() - again + second.repeats()
            times["c"].append(seconds)
            problems += [f"round {r + 1} (c) {w}" for w in same(single, fanned)]
            print(
                f"round {r + 1} (c) two workers: {seconds:.2f} s, load {loads['c'][-1]:.2f}, "
                f"parts by {len(workers)} worker(s), median part {parts['c'][-1]:.2f} s, "
                f"{repeated} repeated deliveries"
            )
    finally:
        first.stop()

    labels = {
        "a": "(a) `verify(project)`, one process",
        "b": "(b) fan-out, one worker",
        "c": "(c) fan-out, two workers",
    }
    events = args.streams * args.events
    rows = []
    for key in ("a", "b", "c"):
        m = median(times[key])
        rows.append(
            (
                labels[key],
                f"{m:.2f}",
                ", ".join(f"{t:.2f}" for t in times[key]),
                f"{events / m:,.0f}",
                ", ".join(f"{x:.2f}" for x in loads[key]),
                f"{median(parts[key]):.2f}" if parts[key] else "",
            )
        )
    a, b, c = (median(times[k]) for k in ("a", "b", "c"))
    rows.append(("speed-up (a) ÷ (c)", f"**{a / c:.2f}x**", "", "", "", ""))
    rows.append(("speed-up (b) ÷ (c)", f"**{b / c:.2f}x**", "", "", "", ""))
    rows.append(
        (
            "CPU of (a), Python + PostgreSQL; ÷ 2 cores: the floor for (c)",
            f"{median(cpu):.2f}; {median(cpu) / 2:.2f}",
            ", ".join(f"{x:.2f}" for x in cpu),
            "",
            "",
            "",
        )
    )
    report(
        f"Verify across workers, {args.streams} streams x {args.events} events",
        rows,
        (
            "run",
            "median (s)",
            "rounds (s)",
            "events/s",
            "load (1 min) per round",
            "median part (s)",
        ),
    )
    if problems:
        print("REPORTS DIFFER:\n" + "\n".join(problems))
        raise SystemExit(1)
    print("every fanned-out report matched verify(project)'s")


if __name__ == "__main__":
    main()

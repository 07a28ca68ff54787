"""Live delivery latency of subscriptions: from an append's commit to a subscriber's handler.

    .venv/bin/python bench/bench_subscriptions.py [--rounds 3] [--rate 500] [--seconds 10]

On PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
continust_bench_subs, created and migrated if missing). A writer process appends one
event per transaction (``continust.log.store.append``, the linear path) at ``--rate``
events a second for ``--seconds``, and notes the time each append returned (its commit).
In this process, one reader at a time follows the project's log and notes when each event
reaches it:

- ``notify``: the raw limit, a bare psycopg connection LISTENing on ``continust_log``
  (the notification each append's statement sends at commit): no read at all;
- ``catch-up``: ``continust.subscriptions.catchup.subscribe``, woken by NOTIFY, its
  handler called in the transaction that stores its position;
- ``persistent``: one consumer of a persistent subscription
  (``continust.subscriptions.persistent.consume``): queue, claim under a lease, handle,
  acknowledge;
- ``polling``: ``read_log`` every 50 ms without notifications, what a reader without
  NOTIFY gets (SQLite's followers poll this way, every second by default).

Latency = the reader's time - the writer's commit time, per event (same clock). Each
round measures every reader once, their order rotating; a figure is the median over the
rounds of each round's p50 and p99, with the 1-minute load average at the end of each
measurement beside it. Printed and written to bench/out/subscriptions.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, median, percentile, report, setup_django  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_subs"
READERS = ["notify", "catch-up", "persistent", "polling"]


def write(slug: str, rate: float, seconds: float, out: str) -> None:
    """The writer process: append at ``rate`` and write each append's commit time."""
    from continust.log.lookup import get_project, get_stream
    from continust.log.store import NewEvent, append

    stream = get_stream(get_project(slug), "s")
    committed: list[float] = []
    count = int(rate * seconds)
    start = time.monotonic()
    for i in range(count):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        append(stream, [NewEvent(type="tick", payload={"i": i})])
        committed.append(time.time())
    elapsed = time.monotonic() - start
    Path(out).write_text(json.dumps({"committed": committed, "rate": count / elapsed}))


def start_writer(slug: str, rate: float, seconds: float, out: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--writer",
            slug,
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--out",
            out,
        ],
        cwd=ROOT,
        env={**os.environ},
    )


def measure(reader: str, rate: float, seconds: float) -> dict[str, float]:
    import psycopg
    from django.db import connection

    from continust.log.projects import create_project, create_stream
    from continust.read.project_log import read_log
    from continust.subscriptions import catchup, persistent, registry

    project = create_project(f"b{uuid.uuid4().hex[:10]}")
    create_stream(project, "s")
    count = int(rate * seconds)
    seen: dict[int, float] = {}
    deadline = time.monotonic() + seconds + 30

    def done() -> bool:
        return len(seen) >= count or time.monotonic() > deadline

    def note(entry: object) -> None:
        seen[entry.event.payload["i"]] = time.time()  # type: ignore[attr-defined]

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        if reader == "notify":
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute("LISTEN continust_log")
                writer = start_writer(project.slug, rate, seconds, out.name)
                k = 0
                while not done():
                    for n in listener.notifies(timeout=1.0):
                        if int(n.payload) == project.pk:
                            seen[k] = time.time()
                            k += 1
                        if done():
                            break
        elif reader == "catch-up":
            registry.create_subscription(project, "bench")
            writer = start_writer(project.slug, rate, seconds, out.name)
            catchup.subscribe(project, "bench", note, stop=done, wait_seconds=0.5)
        elif reader == "persistent":
            subscription = registry.create_subscription(project, "bench", kind="persistent")
            writer = start_writer(project.slug, rate, seconds, out.name)
            persistent.consume(subscription, note, stop=done, wait_seconds=0.5)
        else:
            writer = start_writer(project.slug, rate, seconds, out.name)
            after = None
            from continust.read.project_log import START

            after = START
            while not done():
                page = read_log(project, after, limit=1000)
                for entry in page.entries:
                    note(entry)
                after = page.next
                if page.caught_up:
                    time.sleep(0.05)
        writer.wait()
        load = os.getloadavg()[0]
        written = json.loads(Path(out.name).read_text())
    committed = written["committed"]
    latencies = [(seen[i] - committed[i]) * 1000 for i in range(len(committed)) if i in seen]
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "rate": written["rate"],
        "missing": count - len(latencies),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--writer")
    parser.add_argument("--out")
    args = parser.parse_args()
    setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    if args.writer:
        write(args.writer, args.rate, args.seconds, args.out)
        return
    results: dict[str, list[dict[str, float]]] = {r: [] for r in READERS}
    for n in range(args.rounds):
        order = READERS[n % len(READERS) :] + READERS[: n % len(READERS)]
        for reader in order:
            figures = measure(reader, args.rate, args.seconds)
            results[reader].append(figures)
            print(reader, {k: round(v, 2) for k, v in figures.items()}, flush=True)
    raw = median([r["p50"] for r in results["notify"]])
    rows = []
    for reader in READERS:
        got = results[reader]
        p50 = median([r["p50"] for r in got])
        p99 = median([r["p99"] for r in got])
        rows.append(
            (
                reader,
                f"{p50:.1f}",
                f"{p99:.1f}",
                f"{p50 / raw:.1f}×" if raw > 0 else "—",
                f"{median([r['rate'] for r in got]):.0f}",
                str(sum(int(r["missing"]) for r in got)),
                " / ".join(f"{r['load']:.1f}" for r in got),
            )
        )
    report(
        "subscriptions",
        rows,
        (
            "reader",
            "p50 ms",
            "p99 ms",
            "p50 / notify",
            "events/s written",
            "events missed",
            "load (1 min) per round",
        ),
    )


if __name__ == "__main__":
    main()

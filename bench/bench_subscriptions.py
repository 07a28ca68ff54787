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


def write(slug: str, rate: float, seconds: float, out: str, w: int) -> None:
    """A writer process: append at ``rate`` and write each append's commit time."""
    from continust.log.lookup import get_project, get_stream
    from continust.log.store import NewEvent, append

    stream = get_stream(get_project(slug), f"s{w}")  # one stream per writer
    committed: list[float] = []
    count = int(rate * seconds)
    start = time.monotonic()
    for i in range(count):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        append(stream, [NewEvent(type="tick", payload={"w": w, "i": i})])
        committed.append(time.time())
    elapsed = time.monotonic() - start
    Path(out).write_text(json.dumps({"committed": committed, "rate": count / elapsed}))


WRITERS = 4


class Writers:
    """``WRITERS`` writer processes, each appending ``rate / WRITERS`` events a second."""

    def __init__(self, slug: str, rate: float, seconds: float, out: str) -> None:
        self.outs = [f"{out}.{w}" for w in range(WRITERS)]
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--writer",
                    slug,
                    "--rate",
                    str(rate / WRITERS),
                    "--seconds",
                    str(seconds),
                    "--out",
                    self.outs[w],
                    "--w",
                    str(w),
                ],
                cwd=ROOT,
                env={**os.environ},
            )
            for w in range(WRITERS)
        ]
        self.ended: float | None = None

    def running(self) -> bool:
        if all(p.poll() is not None for p in self.processes):
            self.ended = self.ended or time.monotonic()
            return False
        return True

    def wait(self) -> tuple[dict[tuple[int, int], float], float]:
        committed: dict[tuple[int, int], float] = {}
        rate = 0.0
        for w, p in enumerate(self.processes):
            p.wait()
            written = json.loads(Path(self.outs[w]).read_text())
            committed.update({(w, i): t for i, t in enumerate(written["committed"])})
            rate += written["rate"]
            Path(self.outs[w]).unlink()
        return committed, rate


def measure(reader: str, rate: float, seconds: float) -> dict[str, float]:
    import psycopg
    from django.db import connection

    from continust.log.projects import create_project, create_stream
    from continust.read.project_log import read_log
    from continust.subscriptions import catchup, persistent, registry

    project = create_project(f"b{uuid.uuid4().hex[:10]}")
    for w in range(WRITERS):
        create_stream(project, f"s{w}")
    count = int(rate * seconds) // WRITERS * WRITERS
    seen: dict[tuple[int, int], float] = {}
    writers: list[Writers] = []

    def done() -> bool:
        # Every event seen, or 10 s after the last writer ended (what is left is missed).
        if len(seen) >= count:
            return True
        return (
            bool(writers)
            and not writers[0].running()
            and (time.monotonic() > (writers[0].ended or 0) + 10)
        )

    def note(entry: object) -> None:
        payload = entry.event.payload  # type: ignore[attr-defined]
        seen[(payload["w"], payload["i"])] = time.time()

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        if reader == "notify":
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute("LISTEN continust_log")
                writers.append(Writers(project.slug, rate, seconds, out.name))
                notes: list[float] = []
                while not done():
                    for n in listener.notifies(timeout=1.0, stop_after=1):
                        if int(n.payload) == project.pk:
                            notes.append(time.time())
                            seen[(-1, len(notes))] = notes[-1]
        elif reader == "catch-up":
            registry.create_subscription(project, "bench")
            writers.append(Writers(project.slug, rate, seconds, out.name))
            catchup.subscribe(project, "bench", note, stop=done, wait_seconds=0.5)
        elif reader == "persistent":
            subscription = registry.create_subscription(project, "bench", kind="persistent")
            writers.append(Writers(project.slug, rate, seconds, out.name))
            persistent.consume(subscription, note, stop=done, wait_seconds=0.5)
        else:
            writers.append(Writers(project.slug, rate, seconds, out.name))
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
        committed, written = writers[0].wait()
        load = os.getloadavg()[0]
    if reader == "notify":
        # One notification per append, in commit order: the k-th goes with the k-th commit.
        commits = sorted(committed.values())
        received = [seen[(-1, k + 1)] for k in range(len(notes))]
        latencies = [(r - c) * 1000 for r, c in zip(received, commits, strict=False)]
    else:
        latencies = [(seen[key] - t) * 1000 for key, t in committed.items() if key in seen]
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "rate": written,
        "missing": len(committed) - len(latencies),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--writer")
    parser.add_argument("--out")
    parser.add_argument("--w", type=int, default=0)
    args = parser.parse_args()
    setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    if args.writer:
        write(args.writer, args.rate, args.seconds, args.out, args.w)
        return
    results: dict[str, list[dict[str, float]]] = {r: [] for r in READERS}
    for n in range(args.rounds):
        order = READERS[n % len(READERS) :] + READERS[: n % len(READERS)]
        for reader in order:
            figures = measure(reader, args.rate, args.seconds)
            results[reader].append(figures)
            print(reader, {k: round(v, 2) for k, v in figures.items()}, flush=True)
    # The notification's own p50 is about 0 (it may arrive before the writer hears of its
    # commit), so readers are compared with its p99.
    raw = median([r["p99"] for r in results["notify"]])
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
                f"{p99 / raw:.1f}×" if raw > 0 else "—",
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
            "p99 / notify's p99",
            "events/s written",
            "events missed",
            "load (1 min) per round",
        ),
    )


if __name__ == "__main__":
    main()

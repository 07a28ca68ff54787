"""Catch-up read of a project's whole log ($all) beside a raw SELECT of the same rows.

    .venv/bin/python bench/bench_all_log.py [--events 100000] [--streams 10] [--rounds 3]

On PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
continust_bench_allfeed, created and migrated if missing), one project with ``--streams``
streams gets ``--events`` events (1,000-event batches, round robin over the streams, small
payloads). Then, in each of ``--rounds`` rounds, back to back and in alternating order:

- **continust**: ``continust.read.project_log.read_log`` from log position 0, 1,000 events a
  page, until caught up: every event as a model instance with its stream and log position,
  read without a gap past transactions still running;
- **raw**: psycopg alone, the same rows and columns (with the stream's name), keyset-paged
  1,000 at a time by ``ORDER BY position`` (what a reader who ignores in-flight transactions
  would write), tuples only;
- **raw, one query**: a single ``SELECT ... ORDER BY position`` of every row, fetched whole.

A figure is the median of the rounds (events per second), with the 1-minute load average
at the end of the measurement beside it; the ratio is continust's rate over raw's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import machine, report, setup_django  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_allfeed"
COLUMNS = (
    "e.position, e.id, e.seq, e.type, e.timestamp, e.payload, e.causation_id,"
    " e.correlation_id, e.actor, e.prev_hash, e.hash, s.name"
)


def fill(events: int, streams: int) -> object:
    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append

    slug = f"allfeed{int(time.time())}"
    project = create_project(slug, slug)
    made = [create_stream(project, f"s{i}") for i in range(streams)]
    batch = 1000
    for start in range(0, events, batch):
        stream = made[(start // batch) % streams]
        append(
            stream,
            [NewEvent("reading.taken", {"n": start + i, "v": i % 97}) for i in range(batch)],
        )
    return project


def continust_read(project: object) -> int:
    from continust.read.project_log import START, read_log

    after, count = START, 0
    while True:
        page = read_log(project, after, limit=1000)  # type: ignore[arg-type]
        count += len(page.entries)
        after = page.next
        if page.caught_up:
            return count


def raw_paged(url: str, project_id: int) -> int:
    import psycopg

    count, after = 0, 0
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        while True:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM continust_event e JOIN continust_stream s"
                " ON s.id = e.stream_id WHERE e.project_id = %s AND e.position > %s"
                " ORDER BY e.position LIMIT 1000",
                [project_id, after],
            ).fetchall()
            count += len(rows)
            if len(rows) < 1000:
                return count
            after = rows[-1][0]


def raw_whole(url: str, project_id: int) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM continust_event e JOIN continust_stream s"
            " ON s.id = e.stream_id WHERE e.project_id = %s ORDER BY e.position",
            [project_id],
        ).fetchall()
        return len(rows)


def timed(run: object) -> tuple[float, float, int]:
    start = time.perf_counter()
    count = run()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    return count / elapsed, os.getloadavg()[0], count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    from django.db import connection

    project = fill(args.events, args.streams)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE continust_event")
    pk = project.pk  # type: ignore[attr-defined]
    # A transaction left open anywhere on the server holds back what is settled: wait
    # until every event shows, so each reader reads the same rows.
    while continust_read(project) < args.events:
        time.sleep(0.5)
    systems = {
        "continust read_log": lambda: continust_read(project),
        "raw, keyset pages": lambda: raw_paged(url, pk),
        "raw, one query": lambda: raw_whole(url, pk),
    }
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in systems}
    for round_number in range(args.rounds):
        order = list(systems) if round_number % 2 == 0 else list(reversed(systems))
        for name in order:
            results[name].append(timed(systems[name]))
    for name, runs in results.items():
        assert all(count == args.events for _, _, count in runs), (name, runs)
    base = statistics.median(r[0] for r in results["continust read_log"])
    rows = []
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        loads = " / ".join(f"{r[1]:.1f}" for r in runs)
        rows.append((name, f"{rate:,.0f}", f"{base / rate:.2f}", loads))
    report(
        f"Catch-up read of $all, {args.events:,} events, {args.streams} streams",
        rows,
        ("reader", "events/s (median)", "continust ÷ this", "load (each round)"),
    )
    print(machine())


if __name__ == "__main__":
    main()

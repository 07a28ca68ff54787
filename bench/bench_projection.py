"""Does the built-in projection keep up with the log? Single-event appends beside it.

    .venv/bin/python bench/bench_projection.py [--events 2000] [--rounds 3]

On PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
continust_bench_projection, created and migrated if missing). Each round, in this process:

1. append ``--events`` events, one event per transaction (``continust.log.store.append``),
   over 4 streams: the log's single-event append rate;
2. the built-in ``event_counts`` projection catches up on exactly those events
   (``run_projection``: the code a Celery worker runs, batches of 1,000, rows and log
   position in one transaction each): its events/s;
3. the raw limit for reading: ``read_log`` alone over the same events, pages of 1,000.

A figure is the median of the rounds, with the 1-minute load average at the end of each
measurement beside it. A transaction left open anywhere on the server holds back what
the log's readers see as settled; the projection's and the reader's figures then include
that wait (the load average shows a busy machine). The projection keeps up when its rate
exceeds the append rate (ratio > 1): a single writer cannot outrun it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

from common import report, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_projection"


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))

    from continust.log.projects import create_project, create_stream
    from continust.log.store import NewEvent, append
    from continust.projections import control
    from continust.projections.runner import Outcome, run_projection
    from continust.read.project_log import LogPosition, read_log

    project = create_project(f"bench-{uuid.uuid4().hex[:8]}", "projection benchmark")
    streams = [create_stream(project, f"s{i}") for i in range(4)]
    row = control.get_projection(project, "event_counts")
    samples: dict[str, list[tuple[float, float]]] = {"append": [], "projection": [], "read": []}
    for round_no in range(args.rounds):
        row.refresh_from_db()
        start = LogPosition(row.tx, row.position)
        started = time.perf_counter()
        for n in range(args.events):
            append(streams[n % 4], [NewEvent(("placed", "paid", "shipped")[n % 3], {"n": n})])
        samples["append"].append((args.events / (time.perf_counter() - started), load()))

        started = time.perf_counter()
        target = row.events + args.events
        # Caught up with what is settled: a transaction left open elsewhere on the server
        # holds that back (continust.read.project_log), so run until every event is in.
        while row.events < target:
            assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
            row.refresh_from_db()
        elapsed = time.perf_counter() - started
        assert control.describe(row).lag == 0
        samples["projection"].append((args.events / elapsed, load()))

        started = time.perf_counter()
        after, read = start, 0
        while read < args.events:
            page = read_log(project, after, limit=1000)
            read += len(page.entries)
            after = page.next
        assert read == args.events, read
        samples["read"].append((args.events / (time.perf_counter() - started), load()))
        print(
            f"  round {round_no + 1}: "
            + ", ".join(f"{k} {v[-1][0]:,.0f}/s" for k, v in samples.items()),
            file=sys.stderr,
        )

    def fig(name: str) -> tuple[float, str]:
        rates = [rate for rate, _ in samples[name]]
        loads = ", ".join(f"{avg:.1f}" for _, avg in samples[name])
        value = statistics.median(rates)
        return value, f"{value:,.0f} (rounds {', '.join(f'{r:,.0f}' for r in rates)}; load {loads})"

    appended, append_text = fig("append")
    projected, projection_text = fig("projection")
    _, read_text = fig("read")
    report(
        "Projections keeping up",
        [
            ("single-event appends (the log)", append_text, "1.00"),
            ("event_counts projection", projection_text, f"{projected / appended:.1f}"),
            ("read_log alone (raw limit)", read_text, "—"),
        ],
        ("events/s, median of rounds", "figure", "ratio to appends"),
    )


if __name__ == "__main__":
    main()

"""Where a single continust append spends its time: ``bench/bench_log.py --profile``.

- the split of one append's wall time: client CPU (this process), server CPU (the backends'
  utime + stime from /proc), the round trips (counted by bench_log's proxy) times a loopback
  ``SELECT 1`` round trip, the rest (waiting: fsync, locks, scheduling);
- cProfile of the client over ``--profile-appends`` appends (top functions);
- EXPLAIN (ANALYZE, BUFFERS) of each statement an append sends through Django, run just
  before the statement itself inside a savepoint that is rolled back.

Written to bench/out/profile-single-append.txt.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "profile-single-append.txt"


def profile(
    writers: Any, monitor: Any, appends: int = 200, round_trips: float | None = None
) -> str:
    from django.db import connection

    lines: list[str] = []
    writers.single("continust", "profile")
    with connection.cursor() as cursor:
        rtts = []
        for _ in range(200):
            started = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            rtts.append(time.perf_counter() - started)
    rtt = statistics.median(rtts) * 1000

    cpu, server = time.process_time(), monitor.server_cpu()
    started = time.perf_counter()
    for _ in range(appends):
        writers.single("continust", "profile")
    wall = (time.perf_counter() - started) / appends * 1000
    client = (time.process_time() - cpu) / appends * 1000
    server_ms = (monitor.server_cpu() - server) / appends * 1000
    lines += [
        f"single append, {appends} appends, one stream, this process:",
        f"  wall {wall:.2f} ms = client CPU {client:.2f} ms + server CPU {server_ms:.2f} ms"
        f" + the rest {wall - client - server_ms:.2f} ms (waiting: round trips, fsync, "
        "locks, the scheduler)",
        f"  a loopback round trip (SELECT 1 through Django, median): {rtt:.3f} ms",
    ]
    if round_trips:
        lines.append(f"  {round_trips:g} round trips × {rtt:.3f} ms ≈ {round_trips * rtt:.2f} ms")
    lines.append(f"  load average at the end: {__import__('os').getloadavg()[0]:.2f}")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(appends):
        writers.single("continust", "profile")
    profiler.disable()
    for key in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(25)
        text = re.sub(r"/\S*/(site-packages|wt-[^/]+)/", "", buffer.getvalue())
        lines += ["", f"cProfile, {appends} appends, sorted by {key}:", text]

    plans: list[tuple[str, float, float, str]] = []

    def explain(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        head = sql.lstrip().split(None, 1)[0].upper()
        if not many and head in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            raw = context["cursor"].cursor
            raw.execute("SAVEPOINT bench_explain")
            raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(r[0] for r in raw.fetchall())
            raw.execute("ROLLBACK TO SAVEPOINT bench_explain")
            planning = re.search(r"Planning Time: ([\d.]+)", plan)
            execution = re.search(r"Execution Time: ([\d.]+)", plan)
            plans.append(
                (
                    sql,
                    float(planning.group(1)) if planning else 0.0,
                    float(execution.group(1)) if execution else 0.0,
                    plan,
                )
            )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        writers.single("continust", "profile")
    lines += [
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of one append's statements (planning + execution, ms):",
    ]
    for sql, planning, execution, _ in plans:
        lines.append(f"  {planning:7.3f} + {execution:7.3f}  {sql[:110]!r}")
    lines.append(
        f"  total: planning {sum(p[1] for p in plans):.3f} ms, execution "
        f"{sum(p[2] for p in plans):.3f} ms, SQL text {sum(len(p[0]) for p in plans):,}"
        " characters"
    )
    for sql, _, _, plan in plans:
        lines += ["", sql[:2000], plan]
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print("\n".join(lines[:8]))
    return text

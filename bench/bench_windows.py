"""Windowed aggregation throughput: continust.pipelines.windows, and bytewax if installed.

    .venv/bin/python bench/bench_windows.py [--events N] [--keys K] [--no-bytewax]

The same events for everyone: N events over K keys, one event per millisecond
on average, mildly out of order (one in ten delayed by up to 150 ms; watermark
out-of-orderness 200 ms, so nothing is late). Each key falls silent one second in
four, so sessions (gap 500 ms) close. Windows: tumbling 1 s, sliding 10 s / 1 s,
session gap 500 ms; the aggregate is count, sum, min and max per key and window.
Prints a markdown table of events per second (best of --repeat runs), by
wall-clock time and by CPU time of the whole process (all threads: bytewax runs
its worker in Rust), the latter being steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from continust.pipelines.windows import (
    Session,
    Sliding,
    Tumbling,
    Watermarks,
    WindowOperator,
    run_windows,
)

OOO_MS = 200
WINDOWS: dict[str, Any] = {
    "tumbling 1 s": Tumbling(1_000),
    "sliding 10 s / 1 s": Sliding(10_000, 1_000),
    "session gap 500 ms": Session(500),
}


def make_events(n: int, keys: int, seed: int = 42) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    names = [f"k{i:03d}" for i in range(keys)]
    events = []
    for i in range(n):
        ts = i
        if rng.random() < 0.1:
            ts -= rng.randint(0, 150)
        second = ts // 1_000
        while True:  # key k is silent in the seconds where (second + k) % 4 == 0
            k = rng.randrange(keys)
            if (second + k) % 4:
                break
        events.append((names[k], ts, rng.randint(0, 1_000)))
    return events


def checksum(outputs: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(windows, total count, late events) of final results."""
    latest: dict[tuple[Any, int, int], int] = {}
    late = 0
    for rec in outputs:
        if rec.get("late"):
            late += 1
            continue
        for start, end in rec.get("supersedes", ()):
            latest.pop((rec["key"], start, end), None)
        latest[(rec["key"], rec["start"], rec["end"])] = rec["count"]
    return len(latest), sum(latest.values()), late


# --------------------------------------------------------------------------- ours


def ours_batch(assigner: Any, events: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    op = WindowOperator(assigner)
    out = op.process_batch(events, Watermarks(OOO_MS))
    out += op.flush()
    return out


def ours_per_event(assigner: Any, events: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    op = WindowOperator(assigner)
    marks = Watermarks(OOO_MS)
    process, advance, observe = op.process, op.advance_watermark, marks.observe
    out: list[dict[str, Any]] = []
    for key, ts, value in events:
        out += process(key, ts, value)
        out += advance(observe(ts))
    out += op.flush()
    return out


def ours_cli(assigner: Any, dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    spec = assigner.to_json() | {"out_of_orderness_ms": OOO_MS}
    return list(run_windows(spec, dicts))


# --------------------------------------------------------------------------- bytewax

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def bytewax_available() -> bool:
    try:
        import bytewax.operators.windowing  # noqa: F401
    except ImportError:
        return False
    return True


def bytewax_run(assigner: Any, items: list[tuple[str, datetime, int]]) -> tuple[int, int, int]:
    import bytewax.operators as op
    import bytewax.operators.windowing as win
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource, run_main

    if isinstance(assigner, Tumbling):
        windower: Any = win.TumblingWindower(
            length=timedelta(milliseconds=assigner.size_ms), align_to=BASE
        )
    elif isinstance(assigner, Sliding):
        windower = win.SlidingWindower(
            length=timedelta(milliseconds=assigner.size_ms),
            offset=timedelta(milliseconds=assigner.slide_ms),
            align_to=BASE,
        )
    else:
        windower = win.SessionWindower(gap=timedelta(milliseconds=assigner.gap_ms))
    # A frozen "system time", so the watermark is max event time - wait, as ours;
    # with the real clock bytewax's watermark would also move with wall time.
    clock = win.EventClock(
        ts_getter=lambda item: item[1],
        wait_for_system_duration=timedelta(milliseconds=OOO_MS),
        now_getter=lambda: BASE,
    )

    def builder() -> list[Any]:
        return [0, 0, None, None]

    def folder(acc: list[Any], item: tuple[str, datetime, int]) -> list[Any]:
        v = item[2]
        if acc[0]:
            acc[0] += 1
            acc[1] += v
            if v < acc[2]:
                acc[2] = v
            elif v > acc[3]:
                acc[3] = v
        else:
            acc[0], acc[1], acc[2], acc[3] = 1, v, v, v
        return acc

    def merger(a: list[Any], b: list[Any]) -> list[Any]:
        if not b[0]:
            return a
        if not a[0]:
            return b
        return [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])]

    results: list[Any] = []
    late: list[Any] = []
    flow = Dataflow("bench_windows")
    up = op.input("in", flow, TestingSource(items, batch_size=1_000))
    keyed = op.key_on("key", up, lambda item: item[0])
    out = win.fold_window("fold", keyed, clock, windower, builder, folder, merger, ordered=False)
    op.output("out", out.down, TestingSink(results))
    op.output("late", out.late, TestingSink(late))
    run_main(flow)
    return len(results), sum(acc[0] for _key, (_wid, acc) in results), len(late)


# --------------------------------------------------------------------------- main


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall-clock and best CPU seconds (all threads of the process) over runs."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_wall, best_cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-bytewax", action="store_true")
    args = parser.parse_args()

    events = make_events(args.events, args.keys)
    dicts = [{"key": k, "ts": t, "value": v} for k, t, v in events]
    with_bytewax = not args.no_bytewax and bytewax_available()
    items = [(k, BASE + timedelta(milliseconds=t), v) for k, t, v in events] if with_bytewax else []

    n = len(events)
    rows: list[tuple[str, ...]] = []

    def row(name: str, engine: str, wall: float, cpu: float, note: str = "") -> None:
        rows.append((name, engine, f"{n / wall:,.0f}", f"{n / cpu:,.0f}", note))

    for name, assigner in WINDOWS.items():
        wall, cpu, out = timed(lambda a=assigner: ours_batch(a, events), args.repeat)
        windows, total, late = checksum(out)
        row(name, "continust `process_batch`", wall, cpu, f"{windows} windows, {late} late")
        wall, cpu, out2 = timed(lambda a=assigner: ours_per_event(a, events), args.repeat)
        assert out2 == out
        row(name, "continust `process` + `advance_watermark`", wall, cpu)
        wall, cpu, out3 = timed(lambda a=assigner: ours_cli(a, dicts), args.repeat)
        assert out3 == out
        row(name, "continust `run_windows` (dicts)", wall, cpu)
        if with_bytewax:
            bw_repeat = max(1, args.repeat - 2)
            wall, cpu, (bw_windows, bw_total, bw_late) = timed(
                lambda a=assigner: bytewax_run(a, items), bw_repeat
            )
            same = (bw_windows, bw_total, bw_late) == (windows, total, late)
            note = f"{bw_windows} windows, {bw_late} late" + ("" if same else " (DIFFERS)")
            row(name, "bytewax `fold_window`", wall, cpu, note)
        print(f"{name}: done", file=sys.stderr)

    version = ""
    if with_bytewax:
        from importlib.metadata import version as pkg_version

        version = f", bytewax {pkg_version('bytewax')}"
    print(
        f"\n{n:,} events, {args.keys} keys, out-of-orderness {OOO_MS} ms; "
        f"CPython {platform.python_version()}{version}; best of {args.repeat}\n"
    )
    print("| windows | engine | events/s (wall) | events/s (CPU) | output |")
    print("|---|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not with_bytewax:
        print("\n(bytewax not importable: `uv sync --group bench` to compare)")


if __name__ == "__main__":
    main()

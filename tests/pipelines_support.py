"""Shared helpers of the pipeline tests: writing timed events, and the expected sink rows.

The expected rows come straight from ``continust.pipelines.windows`` fed every event in log
order, with no pipeline, cursor, epoch or database in between: what an
uninterrupted run must leave in the sink.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from continust.log.canonical import canonical_json
from continust.log.store import NewEvent, append
from continust.models import Event, Pipeline, WindowResult
from continust.pipelines.windows import Stats, Watermarks, WindowOperator, spec_from_json

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def write_events(
    streams, count: int, *, seed: int = 7, chunk: int = 2000, types=("click", "view", "buy")
) -> None:
    """Append ``count`` events spread over the streams, a second apart, a little out of order."""
    rng = random.Random(seed)
    pending: dict[int, list[NewEvent]] = {i: [] for i in range(len(streams))}
    for n in range(count):
        index = rng.randrange(len(streams))
        jitter = rng.randrange(-3, 4)
        pending[index].append(
            NewEvent(
                type=rng.choice(types),
                payload={"n": n, "amount": rng.randrange(1, 100)},
                timestamp=T0 + timedelta(seconds=n + jitter),
            )
        )
        if len(pending[index]) >= chunk:
            append(streams[index], pending[index])
            pending[index] = []
    for index, batch in pending.items():
        if batch:
            append(streams[index], batch)


def log_elements(project) -> list[tuple[Any, int, int]]:
    """Every event of the project in log order as event-counts' (key, ts, value) elements."""
    rows = (
        Event.objects.filter(stream__project=project)
        .order_by("position")
        .values_list("stream__name", "type", "timestamp")
    )
    return [
        ((stream, type_), (ts - EPOCH) // timedelta(milliseconds=1), 1)
        for stream, type_, ts in rows
    ]


def expected_rows(elements, window: dict[str, Any]) -> dict[tuple[str, int, int], tuple]:
    """(key, start, end) -> (fire, count, sum) that the sink holds after these elements."""
    spec = spec_from_json(window)
    operator = WindowOperator(
        spec.assigner,
        aggregate=Stats(tuple(spec.aggregates)),
        allowed_lateness_ms=spec.allowed_lateness_ms,
    )
    marks = Watermarks(spec.out_of_orderness_ms)
    rows: dict[tuple[str, int, int], tuple] = {}
    for record in operator.process_batch(elements, marks):
        if record.get("late"):
            continue
        key = canonical_json(record["key"])
        for start, end in record.get("supersedes") or ():
            rows.pop((key, start, end), None)
        rows[(key, record["start"], record["end"])] = (
            record["fire"],
            record["count"],
            record["sum"],
        )
    return rows


def sink_rows(pipeline: Pipeline) -> dict[tuple[str, int, int], tuple]:
    """What the sink holds for the pipeline, in the shape of ``expected_rows``."""
    return {
        (r.key, r.start, r.end): (r.fire, r.count, r.values["sum"])
        for r in WindowResult.objects.filter(pipeline=pipeline)
    }


def _register_test_counts() -> None:
    """``test-counts``: event-counts whose every stage checkpoints (workers import it too,
    through CONTINUST_PIPELINES=tests.pipelines_support)."""
    from continust.pipelines import Definition, KeyBy, LogSource, WindowResultSink, WindowStage
    from continust.pipelines.registry import register

    @register(
        "test-counts",
        description="event counts, every stage checkpointed",
        defaults={"window": {"type": "tumbling", "size_ms": 60_000}, "batch_events": 1000},
    )
    def test_counts(params):
        return Definition(
            sources=[LogSource(payloads=False)],
            stages=[
                KeyBy(lambda e: (e.stream, e.type), durable=True),
                WindowStage.from_spec(spec_from_json(params["window"])),
            ],
            sink=WindowResultSink(),
            batch_events=params["batch_events"],
            queue_batches=2,
        )


_register_test_counts()

"""An exactly-once pipeline on PostgreSQL: events/s from the log through a window into the sink,
and what the checkpoints cost per committed epoch.

    .venv/bin/python bench/bench_pipeline.py [--events 200000] [--batch 2000] [--streams 10]

It builds (once; later runs reuse it) a project of ``--streams`` streams holding
``--events`` events in the benchmark database (BENCH_DATABASE_URL, created if missing),
then runs the built-in ``event-counts`` pipeline (key by stream and type, 1-minute
tumbling windows, upserted into ``WindowResult``) from the start of the log to its head,
in this process: the code a Celery worker runs, with one database connection. Runs:

1. exactly once, as shipped: every stage checkpoints each epoch, the sink commits each
   epoch with the cursor and the window state in one fenced transaction;
2. the same without stage checkpoints (``durable = False``): still exactly once into the
   sink (cursor, window state and results commit together), but a crash re-executes
   every uncommitted epoch from the source instead of restarting at the stage it reached;
3. the source alone (polls of the log, nothing else): the ceiling for reading.

The checkpoint overhead per committed epoch is the time spent writing stage checkpoints
plus the commit transaction minus the sink's own writes, divided by the epochs. Numbers
go to stdout and bench/out/.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from common import report, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/continust_bench_pipeline"
BUILD_CHUNK = 20_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("click", "view", "buy", "search")


def ensure_events(events: int, streams: int):
    """Return the benchmark project, building ``events`` events over ``streams`` streams."""
    from django.db import transaction

    from continust.log.projects import create_project, create_stream
    from continust.log.store import Batch, NewEvent, lock_stream, move_branch
    from continust.models import Event, Project

    slug = f"bench-{events}-{streams}"
    project = Project.objects.filter(slug=slug).first()
    if project is not None and Event.objects.filter(stream__project=project).count() == events:
        return project
    if project is not None:
        slug = f"{slug}-{uuid.uuid4().hex[:6]}"
    project = create_project(slug, "pipeline benchmark")
    made = [create_stream(project, f"s{i}") for i in range(streams)]
    started = time.perf_counter()
    heads: dict[int, object] = {}
    for first in range(0, events, BUILD_CHUNK):
        count = min(BUILD_CHUNK, events - first)
        stream = made[(first // BUILD_CHUNK) % streams]
        with transaction.atomic():
            locked = lock_stream(stream)
            batch = Batch(locked)
            batch.reserve(count, count)
            head = heads.get(stream.pk)
            for n in range(first, first + count):
                payload = {"n": n, "amount": n % 100}
                event = batch.add_event(
                    NewEvent(
                        TYPES[n % len(TYPES)],
                        payload,
                        timestamp=T0 + timedelta(milliseconds=50 * n + (n * 7919) % 3000),
                    )
                )
                head = batch.add_version(
                    event,
                    [head] if head is not None else [],
                    {"n": n},
                    reducer="merge",
                    reducer_version=1,
                    branch="main",
                )
            written = batch.commit()
            heads[stream.pk] = written[-1]
            move_branch(locked, "main", written[-1], reason="append")
        print(f"  built {first + count:,}/{events:,} events", file=sys.stderr)
    print(f"  {events / (time.perf_counter() - started):,.0f} events/s to build", file=sys.stderr)
    return project


class Timings:
    """Wall time spent in a few functions, by name, while installed."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list = []

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        setattr(owner, attribute, timed)
        self._undo.append((owner, attribute, original))

    def undo(self) -> None:
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)


def run(project, batch: int, *, durable: bool | None) -> dict:
    """Run event-counts over the whole log once; return its figures."""
    from continust.models import Pipeline
    from continust.pipelines import control, registry
    from continust.pipelines.runner import CheckpointStore, PipelineRunner, claim
    from continust.pipelines.sinks import WindowResultSink

    name = f"counts-{uuid.uuid4().hex[:8]}"
    window = {"type": "tumbling", "size_ms": 60_000, "out_of_orderness_ms": 5_000}
    pipeline = control.create_pipeline(
        project, name, definition="event-counts", params={"window": window, "batch_events": batch}
    )
    definition = registry.get("event-counts").build(pipeline.params)
    for stage in definition.stages:
        if durable is not None:
            stage.durable = durable
    timings = Timings()
    timings.wrap(CheckpointStore, "write", "checkpoint")
    timings.wrap(PipelineRunner, "_commit", "commit")
    timings.wrap(WindowResultSink, "write", "sink")
    runner = PipelineRunner(
        pipeline, definition, fence=claim(pipeline.pk, enable=True), until_caught_up=True
    )
    started = time.perf_counter()
    try:
        outcome = runner.run()
    finally:
        timings.undo()
    elapsed = time.perf_counter() - started
    pipeline = Pipeline.objects.get(pk=pipeline.pk)
    assert outcome == "caught-up", outcome
    epochs = pipeline.epoch
    stage_checkpoints = timings.calls.get("checkpoint", 0) - epochs  # one per epoch is the source's
    overhead = (
        timings.spent.get("checkpoint", 0.0) + timings.spent["commit"] - timings.spent["sink"]
    ) / max(epochs, 1)
    return {
        "events": pipeline.events,
        "epochs": epochs,
        "seconds": elapsed,
        "events_per_s": pipeline.events / elapsed,
        "results": pipeline.results,
        "stage_checkpoints": stage_checkpoints,
        "checkpoint_ms": 1000
        * timings.spent.get("checkpoint", 0.0)
        / max(timings.calls.get("checkpoint", 1), 1),
        "commit_ms": 1000 * timings.spent["commit"] / max(epochs, 1),
        "sink_ms": 1000 * timings.spent["sink"] / max(epochs, 1),
        "overhead_ms": 1000 * overhead,
    }


def read_only(project, batch: int) -> dict:
    """Poll the whole log with the pipeline's source and nothing else."""
    from continust.pipelines.sources import LogSource

    source = LogSource()
    source.bind(project.pk)
    started = time.perf_counter()
    events = 0
    while True:
        poll = source.poll(batch)
        events += len(poll.events)
        if poll.caught_up:
            break
    elapsed = time.perf_counter() - started
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000, help="log positions per epoch")
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    args = parser.parse_args()
    setup_django(DEFAULT_URL if "BENCH_DATABASE_URL" not in __import__("os").environ else None)
    project = ensure_events(args.events, args.streams)
    read_only(project, args.batch)  # warm the cache: every run reads from memory
    variants = [
        ("exactly once as shipped: the window stage checkpoints", None),
        ("exactly once, every stage checkpoints (key_by too)", True),
        ("exactly once, no stage checkpoints", False),
    ]
    results: dict[str, list[dict]] = {label: [] for label, _ in variants}
    sources = []
    for _ in range(args.repeat):
        for label, durable in variants:
            results[label].append(run(project, args.batch, durable=durable))
        sources.append(read_only(project, args.batch))
    rows = []
    for label, _ in variants:
        best = sorted(results[label], key=lambda r: r["events_per_s"])[len(results[label]) // 2]
        rows.append(
            (
                label,
                f"{best['events_per_s']:,.0f}",
                f"{best['epochs']}",
                f"{best['stage_checkpoints']}",
                f"{best['commit_ms']:.2f}",
                f"{best['sink_ms']:.2f}",
                f"{best['checkpoint_ms']:.2f}",
                f"{best['overhead_ms']:.2f}",
            )
        )
    source = sorted(sources, key=lambda r: r["events_per_s"])[len(sources) // 2]
    rows.append(
        (
            "the source alone (reading the log)",
            f"{source['events_per_s']:,.0f}",
            "",
            "",
            "",
            "",
            "",
            "",
        )
    )
    report(
        f"Pipeline: {args.events:,} events, {args.batch} per epoch, log to PostgreSQL sink",
        rows,
        (
            f"run (median of {args.repeat})",
            "events/s",
            "epochs",
            "stage checkpoints",
            "commit ms/epoch",
            "of which sink ms",
            "ms per checkpoint write",
            "checkpoint overhead ms/epoch",
        ),
    )


if __name__ == "__main__":
    main()

"""Running pipelines in process: results, restarts from checkpoints, fencing, backpressure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import LateEvent, Pipeline, PipelineCheckpoint, PipelineRun, WindowResult
from continust.pipelines import control
from continust.pipelines.registry import Definition, register
from continust.pipelines.runner import (
    LeaseLost,
    Outcome,
    PipelineRunner,
    claim,
    run_pipeline,
)
from continust.pipelines.sinks import WindowResultSink
from continust.pipelines.sources import LogSource
from continust.pipelines.stages import Batch, KeyBy, Stage, WindowStage
from continust.pipelines.windows import Tumbling
from tests.pipelines_support import T0, expected_rows, log_elements, sink_rows, write_events

pytestmark = pytest.mark.django_db

MINUTE = {"type": "tumbling", "size_ms": 60_000, "out_of_orderness_ms": 5_000}


def expire_lease(pipeline: Pipeline) -> None:
    """What the clock does to the lease of a worker that died."""
    Pipeline.objects.filter(pk=pipeline.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def run_to_head(pipeline: Pipeline) -> str:
    return run_pipeline(pipeline.pk, worker="test", until_caught_up=True, enable=True)


def test_it_counts_events_per_stream_and_type_as_the_window_operator_does(project):
    streams = [create_stream(project, name) for name in ("web", "app", "api")]
    write_events(streams, 1500)
    pipeline = control.create_pipeline(
        project, "counts", definition="event-counts", params={"window": MINUTE, "batch_events": 100}
    )
    assert run_to_head(pipeline) == Outcome.CAUGHT_UP
    pipeline.refresh_from_db()
    expected = expected_rows(log_elements(project), MINUTE)
    assert sink_rows(pipeline) == expected
    assert pipeline.events == 1500 and pipeline.results == len(expected)
    assert pipeline.status == "paused" and not pipeline.enabled
    assert PipelineCheckpoint.objects.filter(pipeline=pipeline).count() == 0
    stages = [s["name"] for s in pipeline.metrics["stages"]]
    assert stages == ["source", "key_by", "window", "sink"]
    assert {"busy_ms", "idle_ms", "backpressured_ms", "queue", "lag"} <= set(
        pipeline.metrics["stages"][1]
    )


def test_a_second_run_goes_on_from_the_cursor(project):
    streams = [create_stream(project, "web")]
    write_events(streams, 300, seed=1)
    pipeline = control.create_pipeline(
        project, "counts", definition="event-counts", params={"window": MINUTE}
    )
    run_to_head(pipeline)
    write_events(streams, 300, seed=2)
    run_to_head(pipeline)
    pipeline.refresh_from_db()
    assert pipeline.events == 600
    assert sink_rows(pipeline) == expected_rows(log_elements(project), MINUTE)
    assert PipelineRun.objects.filter(pipeline=pipeline).first().resumed_events == 300


def test_a_window_fires_again_within_the_lateness_and_late_events_are_kept(project):
    """
    ts (s):   1  15 | 2 (refires [0,10) within lateness) | 60 | 3 (too late: side output)
    """
    window = {"type": "tumbling", "size_ms": 10_000, "allowed_lateness_ms": 20_000}
    stream = create_stream(project, "s")
    for second in (1, 15, 2, 60, 3):
        append(stream, [NewEvent("tick", {}, timestamp=T0 + timedelta(seconds=second))])
    pipeline = control.create_pipeline(
        project, "late", definition="event-counts", params={"window": window, "batch_events": 1}
    )
    run_to_head(pipeline)
    pipeline.refresh_from_db()
    start = int((T0 - T0.replace(year=1970, month=1, day=1)).total_seconds() * 1000)
    first = WindowResult.objects.get(pipeline=pipeline, start=start)
    assert (first.fire, first.count) == (2, 2)
    assert pipeline.late_events == 1
    late = LateEvent.objects.get(pipeline=pipeline)
    assert late.ts == start + 3000 and late.key == '["s","tick"]'
    assert sink_rows(pipeline) == expected_rows(log_elements(project), window)


def test_merged_sessions_replace_the_rows_they_supersede(project):
    """
    ts (s):  0   20 (two sessions fire)   10 (bridges them: one session replaces both)
    """
    window = {"type": "session", "gap_ms": 10_000, "allowed_lateness_ms": 60_000}
    stream = create_stream(project, "s")
    for second in (0, 20, 45, 10):
        append(stream, [NewEvent("tick", {}, timestamp=T0 + timedelta(seconds=second))])
    pipeline = control.create_pipeline(
        project, "sessions", definition="event-counts", params={"window": window, "batch_events": 1}
    )
    run_to_head(pipeline)
    rows = sink_rows(pipeline)
    assert rows == expected_rows(log_elements(project), window)
    assert sorted(count for _, count, _ in rows.values()) == [3]


# --------------------------------------------------------------------------- crash and resume

CRASH: dict[str, int | None] = {"at": None}


class Crash(BaseException):
    """A worker dying mid-commit: nothing is released, the lease is left to lapse."""


class Gate(Stage):
    """Holds back one epoch a moment, so the stages before it run ahead (and checkpoint)."""

    name = "gate"
    durable = False

    async def execute(self, items, batch):
        if batch.epoch == CRASH["at"]:
            await asyncio.sleep(0.3)
        return items


class CrashingSink(WindowResultSink):
    def write(self, pipeline, batch):
        if batch.epoch == CRASH["at"]:
            raise Crash
        return super().write(pipeline, batch)


@register(
    "crash-test", description="event counts that can die at an epoch", defaults={"size_ms": 60_000}
)
def crash_test(params):
    return Definition(
        sources=[LogSource()],
        stages=[
            KeyBy(lambda e: (e.stream, e.type), durable=True),
            WindowStage(Tumbling(params["size_ms"]), out_of_orderness_ms=5_000),
            Gate(),
        ],
        sink=CrashingSink(),
        batch_events=20,
        queue_batches=2,
    )


def test_a_crashed_run_resumes_from_its_checkpoints_and_writes_each_result_once(project):
    streams = [create_stream(project, name) for name in ("web", "app")]
    write_events(streams, 1000, seed=3)
    pipeline = control.create_pipeline(project, "crashy", definition="crash-test")
    CRASH["at"] = 12
    try:
        with pytest.raises(Crash):
            run_to_head(pipeline)
    finally:
        CRASH["at"] = None
    pipeline.refresh_from_db()
    assert pipeline.epoch == 11 and pipeline.status == "running"  # died holding the lease
    ahead = set(PipelineCheckpoint.objects.filter(pipeline=pipeline).values_list("stage", "epoch"))
    assert ("window", 12) in ahead and ("key_by", 13) in ahead
    assert run_to_head(pipeline) == Outcome.SKIPPED  # the dead owner's lease still holds
    expire_lease(pipeline)
    assert run_to_head(pipeline) == Outcome.CAUGHT_UP
    pipeline.refresh_from_db()
    assert sink_rows(pipeline) == expected_rows(log_elements(project), MINUTE)
    assert pipeline.events == 1000
    resumed = PipelineRun.objects.filter(pipeline=pipeline).first()
    assert resumed.resumed_epoch == 11 and resumed.resumed_events == 11 * 20
    assert 12 in resumed.recovered["window"] and 13 in resumed.recovered["key_by"]
    # Only the gate (not durable) saw epoch 12 again: at least once into the stages.
    assert resumed.redelivered >= 20


# --------------------------------------------------------------------------- ownership


def counts_pipeline(project, name="counts"):
    create_stream(project, "s")
    return control.create_pipeline(project, name, definition="event-counts")


def test_a_second_delivery_does_nothing_while_the_lease_lives(project):
    pipeline = counts_pipeline(project)
    assert claim(pipeline.pk, worker="one", enable=True) == 1
    assert claim(pipeline.pk, worker="two") is None
    assert run_pipeline(pipeline.pk, worker="two") == Outcome.SKIPPED
    expire_lease(pipeline)
    assert claim(pipeline.pk, worker="two") == 2


def test_a_paused_pipeline_is_not_claimed(project):
    pipeline = counts_pipeline(project)
    assert claim(pipeline.pk) is None
    assert run_pipeline(9999) == Outcome.MISSING


def _runner(pipeline, fence):
    definition = Definition(
        sources=[LogSource()], stages=[KeyBy(lambda e: e.stream)], sink=WindowResultSink()
    )
    runner = PipelineRunner(pipeline, definition, fence=fence)
    runner._start()
    return runner


def test_a_stale_owner_can_neither_commit_nor_checkpoint(project):
    pipeline = counts_pipeline(project)
    stale = _runner(pipeline, claim(pipeline.pk, worker="stale", enable=True))
    expire_lease(pipeline)
    assert claim(pipeline.pk, worker="new") == 2
    batch = Batch(
        epoch=1,
        source=0,
        items=[{"key": "k", "start": 0, "end": 10, "fire": 1, "count": 1, "sum": 1}],
        cursor={"position": 5, "gaps": []},
        events=1,
        high=5,
    )
    with pytest.raises(LeaseLost):
        stale._commit(batch)
    with pytest.raises(LeaseLost):
        stale.store.write("source", 1, {"positions": []})
    pipeline.refresh_from_db()
    assert pipeline.epoch == 0 and WindowResult.objects.count() == 0
    assert PipelineCheckpoint.objects.count() == 0


def test_an_epoch_is_committed_once(project):
    pipeline = counts_pipeline(project)
    runner = _runner(pipeline, claim(pipeline.pk, enable=True))
    batch = Batch(
        epoch=1,
        source=0,
        items=[{"key": "k", "start": 0, "end": 10, "fire": 1, "count": 3, "sum": 3}],
        cursor={"position": 5, "gaps": []},
        events=3,
        high=5,
    )
    runner._commit(batch)
    with pytest.raises(LeaseLost, match="does not follow"):
        runner._commit(batch)
    pipeline.refresh_from_db()
    assert (pipeline.epoch, pipeline.events, WindowResult.objects.count()) == (1, 3, 1)


def test_a_reset_takes_a_new_token_so_the_old_run_cannot_commit(project):
    pipeline = counts_pipeline(project)
    runner = _runner(pipeline, claim(pipeline.pk, enable=True))
    with pytest.raises(control.PipelineBusy):
        control.reset(pipeline)
    expire_lease(pipeline)
    control.reset(pipeline)
    with pytest.raises(LeaseLost):
        runner._commit(Batch(1, 0, [], {"position": 1, "gaps": []}, 0, 0))


# --------------------------------------------------------------------------- backpressure


class SlowSink(WindowResultSink):
    """Takes its time with each epoch, noting how full its queue is and how much is in flight."""

    def __init__(self) -> None:
        self.runner: PipelineRunner | None = None
        self.depths: list[int] = []
        self.in_flight: list[int] = []

    async def prepare(self, batch):
        assert self.runner is not None
        # Slower than the source: in the steady part, wait (without a clock to race)
        # until the source has had time to fill the queue, however loaded the machine.
        queue = self.runner.queues[-1]
        for _ in range(200 if len(self.depths) < 50 else 1):
            await asyncio.sleep(0.01)
            if queue.full():
                break
        self.depths.append(queue.qsize())
        self.in_flight.append(self.runner.next_epoch - 1 - batch.epoch)


def test_a_slow_sink_keeps_its_queue_at_the_bound_and_memory_flat(project):
    streams = [create_stream(project, "s")]
    write_events(streams, 300, seed=5)
    pipeline = control.create_pipeline(project, "slow", definition="event-counts")
    sink = SlowSink()
    stages = [
        KeyBy(lambda e: (e.stream, e.type)),
        WindowStage(Tumbling(60_000), out_of_orderness_ms=5_000),
    ]
    definition = Definition(
        sources=[LogSource()], stages=stages, sink=sink, batch_events=5, queue_batches=3
    )
    runner = PipelineRunner(
        pipeline, definition, fence=claim(pipeline.pk, enable=True), until_caught_up=True
    )
    sink.runner = runner
    assert runner.run() == Outcome.CAUGHT_UP
    assert len(sink.depths) == 60
    steady = sink.depths[10:-10]
    assert max(sink.depths) == 3 and min(steady) == 3  # full, never more
    # Epochs read but not committed: at most the queues and one epoch in each stage's hands.
    assert max(sink.in_flight) <= 3 * 3 + len(stages) + 2
    # Every stage upstream of the sink spent time waiting for room downstream.
    assert all(meter.totals()["backpressured"] > 0 for meter in runner.meters[:-1])
    pipeline.refresh_from_db()
    assert sink_rows(pipeline) == expected_rows(log_elements(project), MINUTE)


# --------------------------------------------------------------------------- merged sources


def test_merged_sources_hold_event_time_to_the_slower_one(project):
    """
    source 0 (stream fast): t = 0 ... 300 s       watermark 299 s
    source 1 (stream slow): t = 0 ... 60 s        watermark  59 s  <- the operator's
    """
    fast, slow = create_stream(project, "fast"), create_stream(project, "slow")
    for second in range(0, 301, 5):
        append(fast, [NewEvent("tick", {}, timestamp=T0 + timedelta(seconds=second))])
    for second in range(0, 61, 5):
        append(slow, [NewEvent("tick", {}, timestamp=T0 + timedelta(seconds=second))])
    pipeline = control.create_pipeline(project, "merged", definition="event-counts")
    definition = Definition(
        sources=[LogSource(streams=["fast"]), LogSource(streams=["slow"])],
        stages=[KeyBy(lambda e: e.stream), WindowStage(Tumbling(60_000))],
        sink=WindowResultSink(),
        batch_events=7,
    )
    runner = PipelineRunner(
        pipeline, definition, fence=claim(pipeline.pk, enable=True), until_caught_up=True
    )
    assert runner.run() == Outcome.CAUGHT_UP
    start = int((T0 - T0.replace(year=1970, month=1, day=1)).total_seconds() * 1000)
    fired = sorted(
        (r.key, (r.start - start) // 60_000, r.count)
        for r in WindowResult.objects.filter(pipeline=pipeline)
    )
    # Only the first minute has closed for both inputs: nothing later fired, on either key.
    assert fired == [('"fast"', 0, 12), ('"slow"', 0, 12)]
    pipeline.refresh_from_db()
    assert pipeline.events == 61 + 13 and len(pipeline.cursor) == 2


# --------------------------------------------------------------------------- how runs end


class PauseAt(Stage):
    """Clears the pipeline's wish to run when an epoch comes by, as the explorer's Pause does."""

    name = "pause_at"
    durable = False

    def __init__(self, pipeline_id: int) -> None:
        super().__init__()
        self.pipeline_id = pipeline_id

    async def execute(self, items, batch):
        from asgiref.sync import sync_to_async

        if batch.epoch == 2:
            await sync_to_async(
                Pipeline.objects.filter(pk=self.pipeline_id).update, thread_sensitive=True
            )(enabled=False)
        return items


def test_a_paused_run_commits_what_is_in_flight_and_lets_go(project):
    write_events([create_stream(project, "s")], 200, seed=8)
    pipeline = control.create_pipeline(project, "pausing", definition="event-counts")
    definition = Definition(
        sources=[LogSource()],
        stages=[KeyBy(lambda e: e.stream), PauseAt(pipeline.pk), WindowStage(Tumbling(60_000))],
        sink=WindowResultSink(),
        batch_events=10,
    )
    runner = PipelineRunner(pipeline, definition, fence=claim(pipeline.pk, enable=True))
    assert runner.run() == Outcome.PAUSED  # a continuous run: only the pause ends it
    pipeline.refresh_from_db()
    assert pipeline.status == "paused" and pipeline.lease_expires_at is None
    assert pipeline.epoch == runner.next_epoch - 1  # nothing read was left uncommitted
    assert not PipelineCheckpoint.objects.filter(pipeline=pipeline).exists()


def test_a_run_hands_over_to_a_fresh_message_when_its_slice_ends(project):
    from continust.models import OutboxMessage
    from continust.pipelines.runner import outbox_key

    create_stream(project, "s")
    pipeline = control.create_pipeline(project, "sliced", definition="event-counts")
    assert run_pipeline(pipeline.pk, enable=True, slice_seconds=0.5) == Outcome.HANDED_OVER
    pipeline.refresh_from_db()
    assert pipeline.status == "waiting" and pipeline.enabled
    assert pipeline.lease_expires_at is None
    assert OutboxMessage.objects.filter(key=outbox_key(pipeline)).count() == 1
    assert claim(pipeline.pk, worker="next") is not None  # the next delivery takes it at once

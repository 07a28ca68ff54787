"""A pipeline on a real Celery worker that is killed with SIGKILL three times at random moments.

It must end with exactly the sink rows of an uninterrupted run (none missing, none
twice), every restart must resume from the last commit and the stages' checkpoints
rather than from the start, and a second delivery must change nothing.
"""

from __future__ import annotations

import random
import time

import pytest

from continust.celery import app
from continust.log.projects import create_stream
from continust.models import LateEvent, Pipeline, PipelineRun, WindowResult
from continust.pipelines import control
from continust.pipelines.runner import TASK, Outcome, run_pipeline
from tests.pipelines_support import expected_rows, log_elements, sink_rows, write_events
from tests.worker import poll

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EVENTS = 100_000
# A little lateness on top of the events' jitter: windows fire again, and some events are late.
WINDOW = {
    "type": "tumbling",
    "size_ms": 60_000,
    "out_of_orderness_ms": 1_000,
    "allowed_lateness_ms": 2_000,
}
SETTINGS = {
    "CONTINUST_PIPELINES": "tests.pipelines_support",
    "CONTINUST_PIPELINE_LEASE_SECONDS": "3",
    "CONTINUST_PIPELINE_RESEND_SECONDS": "2",
    "CONTINUST_PIPELINE_EPOCH_DELAY_MS": "40",
    "CONTINUST_PIPELINE_SLICE_SECONDS": "0",
}
TIMEOUT = 300


def wait_for(pipeline, condition, what, timeout=TIMEOUT):
    return poll(
        pipeline,
        condition,
        timeout=timeout,
        interval=0.05,
        describe=lambda p: (
            f"pipeline never {what}: {p.status} epoch {p.epoch} events {p.events} {p.error}"
        ),
    )


def rows_of(pipeline):
    return {
        (r.key, r.start, r.end): (r.fire, r.count, r.values)
        for r in WindowResult.objects.filter(pipeline=pipeline)
    }


def late_of(pipeline):
    return sorted(LateEvent.objects.filter(pipeline=pipeline).values_list("key", "ts"))


def test_killed_three_times_it_writes_exactly_what_an_uninterrupted_run_writes(
    project, start_worker
):
    rng = random.Random(2026)
    write_events([create_stream(project, f"s{i}") for i in range(5)], EVENTS, seed=11)
    params = {"window": WINDOW, "batch_events": 1000}
    pipeline = control.create_pipeline(project, "counts", definition="test-counts", params=params)
    worker = start_worker(**SETTINGS)
    control.start(pipeline)
    for _ in range(3):
        running = wait_for(pipeline, lambda p: p.status == "running" and p.worker, "ran")
        started_at = running.epoch
        target = started_at + rng.randint(3, 12)
        wait_for(pipeline, lambda p, t=target: p.epoch >= t, f"reached epoch {target}")
        time.sleep(rng.uniform(0, 0.4))
        worker.kill()
        pipeline.refresh_from_db()
        assert pipeline.events < EVENTS, "killed too late: the run had finished"
        worker = start_worker(**SETTINGS)
    wait_for(pipeline, lambda p: p.events == EVENTS, "committed every event")
    control.pause(pipeline)
    wait_for(pipeline, lambda p: p.status == "paused" and not p.worker, "let go")

    reference = control.create_pipeline(
        project, "reference", definition="test-counts", params=params
    )
    assert run_pipeline(reference.pk, until_caught_up=True, enable=True) == Outcome.CAUGHT_UP
    reference.refresh_from_db()
    pipeline.refresh_from_db()

    # Exactly the rows of the uninterrupted run, and of the window operator itself.
    assert rows_of(pipeline) == rows_of(reference)
    assert sink_rows(pipeline) == expected_rows(log_elements(project), WINDOW)
    assert late_of(pipeline) == late_of(reference) and reference.late_events > 0
    assert any(fire > 1 for fire, _, _ in rows_of(pipeline).values())  # windows fired again
    assert (pipeline.events, pipeline.late_events, pipeline.results) == (
        reference.events,
        reference.late_events,
        reference.results,
    )

    # Each restart took up the last commit and the checkpoints after it.
    runs = list(PipelineRun.objects.filter(pipeline=pipeline).order_by("id"))
    assert len(runs) >= 4
    restarts = runs[1:]
    assert all(run.resumed_epoch > 0 for run in restarts)
    assert sum(len(epochs) for run in restarts for epochs in run.recovered.values()) > 0
    # Only epochs that were in flight went through a stage again: at most (source, 2 stages,
    # sink) x (2 queue slots + 1 in hand) epochs of 1000 events each. From scratch, a restart
    # would redo everything committed before it.
    for run in restarts:
        assert run.redelivered <= 4 * 3 * 1000, run.redelivered
    assert sum(run.redelivered for run in restarts) < sum(run.resumed_events for run in restarts)
    assert [run.outcome for run in runs[-1:]] == [Outcome.PAUSED]


def test_a_second_delivery_of_the_message_changes_nothing(project, start_worker):
    write_events([create_stream(project, "s")], 3000, seed=4)
    pipeline = control.create_pipeline(
        project, "counts", definition="test-counts", params={"window": WINDOW, "batch_events": 200}
    )
    start_worker(**SETTINGS)
    start_worker(**SETTINGS)
    control.start(pipeline)
    wait_for(pipeline, lambda p: p.status == "running" and p.epoch > 0, "ran")
    for _ in range(3):
        app.send_task(TASK, args=[pipeline.pk])  # duplicates: held by a live lease
    wait_for(pipeline, lambda p: p.events == 3000, "committed every event")
    control.pause(pipeline)
    wait_for(pipeline, lambda p: p.status == "paused" and not p.worker, "let go")
    assert PipelineRun.objects.filter(pipeline=pipeline).count() == 1
    assert sink_rows(pipeline) == expected_rows(log_elements(project), WINDOW)
    assert Pipeline.objects.get(pk=pipeline.pk).fence == 1

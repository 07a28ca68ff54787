"""A pipeline a user defined, on a real Celery worker killed with SIGKILL three times.

Its sink must end with exactly what an uninterrupted run writes: for a table, the rows
of the window operator fed the whole log; for a JSON Lines file, each event's line once,
in log order (appends, which no upsert would hide a duplicate of).
"""

from __future__ import annotations

import json
import random
import time

import pytest

from continust.log.projects import create_stream
from continust.models import Event, PipelineRun
from continust.pipelines import control
from continust.pipelines.user_sinks import file_path
from tests.pipelines_support import expected_rows, log_elements, write_events
from tests.test_pipelines_worker import SETTINGS, wait_for
from tests.test_user_pipelines import WINDOW, counts_spec, table_rows

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EVENTS = 12_000


def kill_three_times(pipeline, start_worker, settings, seed):
    rng = random.Random(seed)
    worker = start_worker(**settings)
    control.start(pipeline)
    for _ in range(3):
        running = wait_for(pipeline, lambda p: p.status == "running" and p.worker, "ran")
        target = running.epoch + rng.randint(2, 6)
        wait_for(pipeline, lambda p, t=target: p.epoch >= t, f"reached epoch {target}")
        time.sleep(rng.uniform(0, 0.2))
        worker.kill()
        pipeline.refresh_from_db()
        assert pipeline.events < EVENTS, "killed too late: the run had finished"
        worker = start_worker(**settings)
    wait_for(pipeline, lambda p: p.events == EVENTS, "committed every event")
    control.pause(pipeline)
    wait_for(pipeline, lambda p: p.status == "paused" and not p.worker, "let go")
    runs = list(PipelineRun.objects.filter(pipeline=pipeline).order_by("id"))
    assert len(runs) >= 4 and all(run.resumed_epoch > 0 for run in runs[1:])


def test_a_table_sink_killed_three_times_holds_the_windows_of_the_log(project, start_worker):
    write_events([create_stream(project, f"s{i}") for i in range(3)], EVENTS, seed=21)
    spec = {**counts_spec(), "batch_events": 200}
    pipeline = control.create_from_spec(project, "counts", spec)
    kill_three_times(pipeline, start_worker, SETTINGS, 17)
    assert table_rows("stream_counts") == expected_rows(log_elements(project), WINDOW)


def test_a_jsonl_sink_killed_three_times_has_each_line_once(project, start_worker, tmp_path):
    write_events([create_stream(project, f"s{i}") for i in range(3)], EVENTS, seed=22)
    files = tmp_path / "files"
    settings = {**SETTINGS, "CONTINUST_PIPELINE_FILES_DIR": str(files)}
    spec = {
        "sources": [{}],
        "steps": [{"map": {"position": "/position", "n": "/payload/n"}}],
        "sink": {"jsonl": {"path": "events.jsonl"}},
        "batch_events": 200,
    }
    from django.test import override_settings

    with override_settings(CONTINUST_PIPELINE_FILES_DIR=str(files)):
        pipeline = control.create_from_spec(project, "lines", spec)
        kill_three_times(pipeline, start_worker, settings, 18)
        lines = [json.loads(line) for line in file_path("acme", "events.jsonl").open()]
    positions = list(
        Event.objects.filter(stream__project=project)
        .order_by("position")
        .values_list("position", flat=True)
    )
    assert [line["position"] for line in lines] == positions
    assert sorted(line["n"] for line in lines) == list(range(EVENTS))

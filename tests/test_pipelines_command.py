"""manage.py pipelines: create from a spec (a bad one refused naming its path, nothing
written), list, show, update, pause, resume and delete."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.log.projects import create_stream
from continust.models import OutboxMessage, Pipeline
from continust.pipelines.runner import run_pipeline
from tests.pipelines_support import write_events
from tests.test_user_pipelines import counts_spec, table_rows

pytestmark = pytest.mark.django_db


def pipelines(*args):
    out = StringIO()
    call_command("pipelines", "--project", "acme", *args, stdout=out)
    return out.getvalue()


def test_a_bad_spec_is_one_line_naming_the_path_and_nothing_is_written(project):
    spec = counts_spec()
    spec["steps"][0]["window"]["size_ms"] = -5
    with pytest.raises(CommandError, match="at /steps/0/window: bad window") as caught:
        pipelines("create", "counts", "--spec", json.dumps(spec))
    assert "\n" not in str(caught.value)
    with pytest.raises(CommandError, match="not valid JSON"):
        pipelines("create", "counts", "--spec", "{nope")
    with pytest.raises(CommandError, match="cannot read the spec"):
        pipelines("create", "counts", "--spec", "@/nonexistent/spec.json")
    assert not Pipeline.objects.exists()
    with pytest.raises(CommandError, match="lower-case"):
        pipelines("create", "Counts!", "--spec", json.dumps(counts_spec()))


def test_the_whole_round(project, tmp_path):
    write_events([create_stream(project, "s")], 400, seed=2)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(counts_spec()))
    created = json.loads(pipelines("create", "counts", "--spec", f"@{spec_file}", "--json"))
    assert created["spec"] == counts_spec() and created["status"] == "idle"
    assert "counts\tidle\tspec" in pipelines("list")

    assert "resume requested" in pipelines("resume", "counts")
    assert OutboxMessage.objects.exists()  # a worker is asked to run it
    with pytest.raises(CommandError, match="pause it"):
        pipelines("update", "counts", "--spec", json.dumps(counts_spec()))
    pipelines("pause", "counts")

    pipeline = Pipeline.objects.get(name="counts")
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    shown = json.loads(pipelines("show", "counts", "--json"))
    assert shown["events"] == 400 and shown["checkpoint"]["epoch"] > 0
    assert shown["lag"] == 0 and table_rows("stream_counts")

    wider = counts_spec(size_ms=120_000)
    with pytest.raises(CommandError, match="cannot go on"):
        pipelines("update", "counts", "--spec", json.dumps(wider))
    with pytest.raises(CommandError, match="deletes every row of table stream_counts.*--yes"):
        pipelines("update", "counts", "--spec", json.dumps(wider), "--reset")
    assert Pipeline.objects.get(name="counts").epoch > 0  # not confirmed: nothing changed
    assert "reset to the start" in pipelines(
        "update", "counts", "--spec", json.dumps(wider), "--reset", "--yes"
    )
    assert Pipeline.objects.get(name="counts").epoch == 0

    with pytest.raises(CommandError, match="pass --yes"):
        pipelines("delete", "counts")
    text = pipelines("delete", "counts", "--yes")
    assert "deleted pipeline counts" in text and "table stream_counts is kept" in text
    assert not Pipeline.objects.exists()
    with pytest.raises(CommandError, match="no pipeline 'counts'"):
        pipelines("show", "counts")

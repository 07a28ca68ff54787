"""Pipelines a user defines by a spec: validation naming the failing path, the steps, and the
table and JSON Lines sinks, exactly once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Pipeline, PipelineCheckpoint
from continust.pipelines import control, specs
from continust.pipelines.runner import Outcome, claim, run_pipeline
from continust.pipelines.user_sinks import file_path
from tests.pipelines_support import T0, expected_rows, log_elements, write_events

pytestmark = pytest.mark.django_db

WINDOW = {"type": "tumbling", "size_ms": 60_000, "out_of_orderness_ms": 1_000}


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.CONTINUST_PIPELINE_FILES_DIR = str(tmp_path / "files")
    return tmp_path / "files"


def counts_spec(table="stream_counts", **window):
    return {
        "description": "events per stream and type per minute",
        "sources": [{"name": "all"}],
        "steps": [{"window": {**WINDOW, **window, "key": ["/stream", "/type"]}}],
        "sink": {
            "table": {
                "name": table,
                "key": ["stream", "type", "start_ms"],
                "columns": {
                    "stream": {"pointer": "/key/0", "type": "text"},
                    "type": {"pointer": "/key/1", "type": "text"},
                    "start_ms": {"pointer": "/start", "type": "integer"},
                    "end_ms": {"pointer": "/end", "type": "integer"},
                    "fire": {"pointer": "/fire", "type": "integer"},
                    "events": {"pointer": "/count", "type": "integer"},
                    "total": {"pointer": "/sum", "type": "number"},
                },
            }
        },
    }


def table_rows(table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT stream, type, start_ms, end_ms, fire, events, total FROM {table}")
        return {
            (json.dumps([s, t], separators=(",", ":")), start, end): (fire, events, total)
            for s, t, start, end, fire, events, total in cursor.fetchall()
        }


def problem(spec, project=None):
    with pytest.raises(specs.InvalidSpec) as caught:
        specs.check(spec, project)
    return caught.value.path, str(caught.value)


# ------------------------------------------------------------------------------ validation


def test_the_schema_names_the_failing_path():
    spec = counts_spec()
    assert problem({**spec, "sink": {}})[0] == "/sink"
    assert problem({**spec, "steps": [{"sort": {}}]})[0] == "/steps/0"
    bad = counts_spec()
    bad["steps"][0]["window"]["size_ms"] = "60s"
    assert problem(bad)[0] == "/steps/0/window/size_ms"
    bad = counts_spec()
    bad["sink"]["table"]["columns"]["events"]["type"] = "money"
    assert problem(bad)[0] == "/sink/table/columns/events/type"
    path, message = problem({**spec, "colour": "red"})
    assert path == "" and "colour" in message


def test_meaning_is_checked_after_the_schema(project):
    create_stream(project, "web")
    bad = counts_spec()
    bad["steps"][0]["window"]["slide_ms"] = 1000  # a tumbling window has no slide
    assert problem(bad)[0] == "/steps/0/window"
    bad = counts_spec()
    bad["sources"] = [{"streams": ["web", "nope"]}]
    path, message = problem(bad, project)
    assert path == "/sources/0/streams/1" and "nope" in message
    bad = counts_spec()
    bad["steps"].insert(0, {"map": {"page": "/payload/page"}})
    with pytest.raises(specs.InvalidSpec) as caught:
        specs.check(bad)
    found = {p.path: p.message for p in caught.value.problems}
    assert "map" in found["/steps/1/window/ts"] and "/steps/1/window/key/0" in found
    bad = counts_spec()
    bad["steps"].insert(0, {"filter": {"pointer": "/payload/n", "op": "gt", "value": "x"}})
    assert problem(bad)[0] == "/steps/0/filter/value"
    bad = counts_spec()
    bad["sink"]["table"]["key"] = ["stream", "nope"]
    assert problem(bad)[0] == "/sink/table/key/1"
    mapped = counts_spec()
    mapped["steps"].insert(0, {"map": {"ts": "/ts", "stream": "/stream"}})
    path, message = problem(mapped)
    assert path == "/steps/1/window/key/1" and "keeps only stream, ts" in message
    mapped["steps"].insert(1, {"filter": {"types": ["click"]}})
    assert problem(mapped)[0] == "/steps/1/filter/types"


def test_a_sink_may_not_write_continust_tables_or_outside_its_directory(project):
    spec = counts_spec(table="continust_event")
    where, said = problem(spec, project)
    assert where == "/sink/table/name" and said.endswith(
        "continust_event is one of continust's own tables"
    )
    spec = counts_spec(table="pg_class")
    assert problem(spec, project)[1].endswith("pg_class is a name of the database's own catalog")
    for path in ("../etc/passwd", "/etc/passwd", "a/../../b", ".hidden", "a//b"):
        spec = {"sources": [{}], "sink": {"jsonl": {"path": path}}}
        assert problem(spec, project)[0] == "/sink/jsonl/path", path


def test_a_jsonl_sink_does_not_follow_a_symbolic_link(project, _files, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (_files / project.slug).mkdir(parents=True)
    (_files / project.slug / "out").symlink_to(outside)
    spec = {"sources": [{}], "sink": {"jsonl": {"path": "out/x.jsonl"}}}
    path, message = problem(spec, project)
    assert path == "/sink/jsonl/path" and "symbolic link" in message


# ------------------------------------------------------------------------------ running


def test_a_table_sink_holds_exactly_the_windows_of_the_log(project):
    write_events([create_stream(project, f"s{i}") for i in range(3)], 1500, seed=3)
    pipeline = control.create_from_spec(project, "counts", {**counts_spec(), "batch_events": 100})
    assert table_rows("stream_counts") == {}  # created with the pipeline, empty
    assert run_pipeline(pipeline.pk, until_caught_up=True, enable=True) == Outcome.CAUGHT_UP
    assert table_rows("stream_counts") == expected_rows(log_elements(project), WINDOW)
    pipeline.refresh_from_db()
    assert pipeline.events == 1500 and pipeline.epoch >= 15


def test_an_existing_table_is_checked_not_recreated(project, settings):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE mine (stream TEXT, start_ms BIGINT)")
    spec = counts_spec(table="mine")
    assert "not created by continust" in problem(spec, project)[1]  # tests/test_sink_tables.py
    settings.CONTINUST_PIPELINE_ADOPT_TABLES = ["mine"]
    path, message = problem(spec, project)
    assert path == "/sink/table/columns" and "type" in message
    spec["sink"]["table"]["create"] = False
    spec["sink"]["table"]["name"] = "absent"
    assert problem(spec, project)[0] == "/sink/table/name"


def test_filters_and_maps_into_a_jsonl_file_without_a_window(project, _files):
    web, app = create_stream(project, "web"), create_stream(project, "app")
    append(web, [NewEvent("click", {"page": "/a", "ms": 12}), NewEvent("view", {"page": "/b"})])
    append(app, [NewEvent("tap", {"screen": "home", "ms": 40}), NewEvent("tap", {"ms": 5})])
    append(web, [NewEvent("click", {"page": "/c", "ms": 3})])
    spec = {
        "sources": [
            {"name": "web", "streams": ["web"], "types": ["click"]},
            {
                "name": "app",
                "streams": ["app"],
                "steps": [{"filter": {"pointer": "/payload/screen", "op": "exists"}}],
            },
        ],
        "steps": [
            {"filter": {"pointer": "/payload/ms", "op": "gte", "value": 10}},
            {"map": {"from": "/stream", "ms": "/payload/ms", "where": "/payload/page"}},
        ],
        "sink": {"jsonl": {"path": "slow/clicks.jsonl"}},
    }
    pipeline = control.create_from_spec(project, "slow", spec)
    assert run_pipeline(pipeline.pk, until_caught_up=True, enable=True) == Outcome.CAUGHT_UP
    lines = (_files / "acme" / "slow" / "clicks.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["ms"] for line in lines) == [12, 40]
    assert {"from": "app", "ms": 40, "where": None} in [json.loads(line) for line in lines]


def test_a_jsonl_sink_cuts_what_an_uncommitted_epoch_left_and_writes_each_line_once(
    project, _files
):
    stream = create_stream(project, "s")
    append(stream, [NewEvent("e", {"n": n}) for n in range(10)])
    spec = {
        "sources": [{}],
        "steps": [{"map": {"n": "/payload/n"}}],
        "sink": {"jsonl": {"path": "n.jsonl"}},
        "batch_events": 4,
    }
    pipeline = control.create_from_spec(project, "numbers", spec)
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    path = file_path("acme", "n.jsonl")
    # A run that died after writing its epoch's lines and before the commit.
    with path.open("ab") as tail:
        tail.write(b'{"n":10}\n{"n":11}\n')
    append(stream, [NewEvent("e", {"n": n}) for n in range(10, 15)])
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == list(range(15))


def test_a_jsonl_sink_given_another_file_goes_on_after_what_it_holds(project, _files):
    stream = create_stream(project, "s")
    append(stream, [NewEvent("e", {"n": n}) for n in range(3)])
    spec = {
        "sources": [{}],
        "steps": [{"map": {"n": "/payload/n"}}],
        "sink": {"jsonl": {"path": "a.jsonl"}},
    }
    pipeline = control.create_from_spec(project, "numbers", spec)
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    file_path("acme", "b.jsonl").write_text('{"n":"before"}\n')
    control.update_spec(pipeline, {**spec, "sink": {"jsonl": {"path": "b.jsonl"}}})
    append(stream, [NewEvent("e", {"n": 3})])
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    assert file_path("acme", "b.jsonl").read_text() == '{"n":"before"}\n{"n":3}\n'
    assert len(file_path("acme", "a.jsonl").read_text().splitlines()) == 3


def test_sessions_that_merge_replace_their_rows_and_late_events_are_kept(project):
    stream = create_stream(project, "s")
    # 5 s bridges two sessions; 2 s comes within the allowed lateness, 3 s after it.
    times = [0, 1_000, 10_000, 5_000, 60_000, 2_000, 200_000, 3_000]
    append(
        stream,
        [NewEvent("e", {"v": 1}, timestamp=T0 + timedelta(milliseconds=t)) for t in times],
    )
    spec = {
        "sources": [{}],
        "steps": [
            {
                "window": {
                    "type": "session",
                    "gap_ms": 5_000,
                    "allowed_lateness_ms": 50_000,
                    "key": "/stream",
                    "value": "/payload/v",
                }
            }
        ],
        "sink": {
            "table": {
                "name": "sessions",
                "key": ["k", "start_ms"],
                "columns": {
                    "k": {"pointer": "/key", "type": "text"},
                    "start_ms": {"pointer": "/start", "type": "integer"},
                    "end_ms": {"pointer": "/end", "type": "integer"},
                    "n": {"pointer": "/count", "type": "integer"},
                },
            }
        },
        "batch_events": 1,
    }
    pipeline = control.create_from_spec(project, "sessions", spec)
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT start_ms, end_ms, n FROM sessions ORDER BY start_ms")
        rows = cursor.fetchall()
    base = int(T0.timestamp() * 1000)
    assert [(s - base, e - base, n) for s, e, n in rows] == [(0, 15_000, 5), (60_000, 65_000, 1)]
    pipeline.refresh_from_db()
    assert pipeline.late_events == 1
    assert list(pipeline.late.values_list("ts", flat=True)) == [base + 3_000]


# ------------------------------------------------------------------------------ control


def test_a_running_pipeline_cannot_be_changed_or_deleted(project):
    pipeline = control.create_from_spec(project, "counts", counts_spec())
    control.start(pipeline)  # asked to run: its spec stays as it is
    with pytest.raises(control.PipelineBusy, match="pause it"):
        control.update_spec(pipeline, counts_spec())
    claim(pipeline.pk, worker="w")  # and a worker holds it
    with pytest.raises(control.PipelineBusy, match="running on w"):
        control.delete_pipeline(pipeline)
    assert Pipeline.objects.filter(pk=pipeline.pk).exists()


def test_an_update_goes_on_where_it_can_and_starts_over_when_asked(project):
    write_events([create_stream(project, "s")], 300, seed=5)
    pipeline = control.create_from_spec(project, "counts", counts_spec())
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    other = counts_spec(size_ms=120_000)
    with pytest.raises(control.PipelineBusy, match="reset"):
        control.update_spec(pipeline, other)
    assert Pipeline.objects.get(pk=pipeline.pk).spec == counts_spec()
    described = counts_spec()
    described["description"] = "renamed"
    assert control.update_spec(pipeline, described).epoch > 0  # same window: goes on
    updated = control.update_spec(pipeline, other, reset_progress=True)
    assert updated.epoch == 0 and table_rows("stream_counts") == {}
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    assert table_rows("stream_counts") == expected_rows(
        log_elements(project), {**WINDOW, "size_ms": 120_000}
    )


def test_delete_removes_the_pipeline_and_keeps_the_users_table(project):
    write_events([create_stream(project, "s")], 300, seed=5)
    pipeline = control.create_from_spec(project, "counts", counts_spec())
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    deleted = control.delete_pipeline(pipeline)
    assert deleted["pipeline"] == "counts" and deleted["runs"] == 1
    assert deleted["kept"] == "table stream_counts"
    assert not Pipeline.objects.filter(pk=pipeline.pk).exists()
    assert not PipelineCheckpoint.objects.exists()
    assert table_rows("stream_counts")


def test_a_table_is_written_by_one_pipeline_only(project):
    control.create_from_spec(project, "counts", counts_spec())
    path, message = problem(counts_spec(), project)  # the pipeline's name is not given
    assert path == "/sink/table/name" and message.endswith("written by pipeline counts")
    other = create_project("other", "Other")
    path, message = problem(counts_spec(), other)
    assert path == "/sink/table/name" and "belongs to another project" in message


# ------------------------------------------------------------------------------ webhook


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_a_webhook_sink_sends_each_epoch_once_signed_and_retried(project):
    from continust.models import WebhookDelivery
    from continust.webhooks import registry
    from continust.webhooks.delivery import run
    from tests.webhook_receiver import Receiver, standard_signature_ok

    stream = create_stream(project, "s")
    append(stream, [NewEvent("e", {"n": n}) for n in range(5)])
    with Receiver(answers=[503, 200, 200]) as receiver:
        # A type filter no event has: the webhook hears the pipeline, not the log.
        webhook, secret = registry.register(project, receiver.url, ["pipeline-only."])
        spec = {
            "sources": [{"streams": ["s"]}],  # not the audit stream, which records the webhook
            "steps": [{"map": {"n": "/payload/n"}}],
            "sink": {"webhook": {"id": webhook.pk}},
            "batch_events": 3,
        }
        assert problem({**spec, "sink": {"webhook": {"id": 999}}}, project)[0] == "/sink/webhook/id"
        pipeline = control.create_from_spec(project, "hook", spec)
        run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
        deliveries = list(WebhookDelivery.objects.filter(pipeline=pipeline).order_by("epoch"))
        assert [d.results for d in deliveries] == [
            [{"n": 0}, {"n": 1}, {"n": 2}],
            [{"n": 3}, {"n": 4}],
        ]
        first = deliveries[0]
        assert run(first.pk) == "pending"  # 503: tried again later
        WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=T0, queued=True)
        assert run(first.pk) == "delivered"
        assert run(deliveries[1].pk) == "delivered"
    bodies = [r.json for r in receiver.requests]
    assert bodies[0] == bodies[1] and bodies[0]["type"] == "pipeline.results"
    assert bodies[0]["data"]["pipeline"] == "hook"
    assert [b["data"]["results"] for b in bodies[1:]] == [d.results for d in deliveries]
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids[0] == ids[1] != ids[2]  # the same id on a retry, for the receiver to dedupe
    assert all(standard_signature_ok(secret, r) for r in receiver.requests)


def test_the_specs_of_the_readme_and_the_docs_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    start = readme.index("--spec '{", readme.index("## Pipelines a user defines"))
    text = readme[start + len("--spec '") : readme.index("}'", start) + 1]
    assert specs.check(json.loads(text))["sink"]["table"]["name"] == "hourly_transfers"
    docs = (root / "docs" / "pipelines.md").read_text()
    section = docs[docs.index("## Pipelines a user defines") :]
    text = section[section.index("```json") + len("```json") : section.index("```\n", 10)]
    assert len(specs.check(json.loads(text))["sources"]) == 2
    bad = json.loads(text)
    bad["steps"][1]["window"]["size_ms"] = -1
    assert "at /steps/1/window: bad window" in problem(bad)[1]


def test_steps_after_the_window_read_its_results(project, _files):
    stream = create_stream(project, "s")
    append(
        stream,
        [
            NewEvent(t, {}, timestamp=T0 + timedelta(seconds=s))
            for s, t in ((1, "a"), (2, "a"), (3, "b"), (70, "a"))
        ],
    )
    spec = {
        "sources": [{}],
        "steps": [
            {"window": {"type": "tumbling", "size_ms": 60_000, "key": ["/stream", "/type"]}},
            {"filter": {"pointer": "/key", "op": "eq", "value": ["s", "a"]}},
            {"map": {"type": "/key/1", "n": "/count"}},
        ],
        "sink": {"jsonl": {"path": "after.jsonl"}},
    }
    pipeline = control.create_from_spec(project, "after", spec)
    run_pipeline(pipeline.pk, until_caught_up=True, enable=True)
    lines = file_path("acme", "after.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"type": "a", "n": 2}]

"""Creating, starting, pausing, resetting and re-sending pipelines; the run_pipeline command."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from continust.core.errors import NotFound
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import OutboxMessage, Pipeline, PipelineStatus
from continust.pipelines import control, registry
from continust.pipelines.registry import InvalidPipeline
from continust.pipelines.runner import claim, outbox_key
from tests.pipelines_support import T0

pytestmark = pytest.mark.django_db


def messages_for(pipeline):
    return OutboxMessage.objects.filter(key=outbox_key(pipeline)).count()


@pytest.fixture
def counts(project):
    return control.create_pipeline(project, "counts", definition="event-counts")


def test_starting_records_the_wish_and_one_message(counts):
    control.start(counts)
    control.start(counts)  # already waiting: nothing more
    counts.refresh_from_db()
    assert counts.enabled and counts.status == PipelineStatus.WAITING
    assert messages_for(counts) == 1


def test_pausing_an_idle_pipeline_pauses_it_at_once(counts):
    control.start(counts)
    control.pause(counts)
    counts.refresh_from_db()
    assert not counts.enabled and counts.status == PipelineStatus.PAUSED
    assert claim(counts.pk) is None  # a late message finds it paused


def test_a_reset_waits_for_the_owner_to_let_go(counts):
    claim(counts.pk, enable=True)
    with pytest.raises(control.PipelineBusy, match="pause it first"):
        control.reset(counts)


def test_a_lapsed_lease_is_sent_to_the_broker_again_once(counts):
    control.start(counts)
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(minutes=5))
    claim(counts.pk)
    Pipeline.objects.filter(pk=counts.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert control.resend_stale() == 1
    assert control.resend_stale() == 0  # the new message is not sent yet
    assert messages_for(counts) == 2


def test_a_paused_pipeline_is_not_sent_again(counts):
    control.pause(counts)
    assert control.resend_stale() == 0


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("Counts!", {"definition": "event-counts"}, "must be lower-case"),
        ("new", {"definition": "event-counts"}, "must be lower-case"),
        ("counts", {"definition": "nope"}, "no pipeline definition 'nope'"),
        ("counts", {"definition": "payload-sum", "params": {"field": ""}}, "must name a payload"),
        (
            "counts",
            {"definition": "event-counts", "params": {"batch_events": 0}},
            "batch_events must be",
        ),
        (
            "counts",
            {"definition": "event-counts", "params": {"streams": "web"}},
            "streams must be a list",
        ),
    ],
)
def test_bad_definitions_and_parameters_are_refused(project, name, kwargs, message):
    with pytest.raises((InvalidPipeline, NotFound), match=message):
        control.create_pipeline(project, name, **kwargs)
    assert not Pipeline.objects.exists()


def test_a_name_is_taken_once_per_project(project, counts):
    with pytest.raises(InvalidPipeline, match="has a pipeline 'counts' already"):
        control.create_pipeline(project, "counts", definition="event-counts")


def test_a_registered_definition_gets_its_defaults():
    registered = registry.get("payload-sum")
    assert registered.params({"group_by": "to"})["field"] == "amount"
    assert {d.name for d in registry.definitions()} >= {"event-counts", "payload-sum"}


# --------------------------------------------------------------------------- the command


def run(*args: str) -> str:
    out = StringIO()
    call_command("run_pipeline", *args, stdout=out)
    return out.getvalue()


def test_the_command_creates_and_runs_a_pipeline_to_the_head(project):
    stream = create_stream(project, "accounts")
    for hour, amount in ((0, 10), (1, 5), (2, 7), (30, 1)):
        append(
            stream,
            [
                NewEvent(
                    "transfer",
                    {"amount": amount, "from": "a"},
                    timestamp=T0 + timedelta(hours=hour),
                )
            ],
        )
    out = json.loads(
        run(
            "transfers",
            "--project",
            "acme",
            "--definition",
            "payload-sum",
            "--params",
            '{"group_by": "from"}',
            "--until-caught-up",
            "--json",
        )
    )
    assert out["outcome"] == "caught-up" and out["events"] == 4 and out["status"] == "paused"
    pipeline = Pipeline.objects.get(name="transfers")
    first = pipeline.window_results.order_by("start").first()
    assert (first.key, first.values["sum"], first.count) == ('"a"', 22, 3)
    again = run("transfers", "--project", "acme", "--until-caught-up")
    assert again.startswith("transfers: caught-up; 4 events in")


def test_the_command_lists_definitions_and_pipelines(project, counts):
    out = json.loads(run("--list", "--project", "acme", "--json"))
    assert "event-counts" in {d["name"] for d in out["definitions"]}
    assert [p["name"] for p in out["pipelines"]] == ["counts"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "acme"], "name the pipeline to run"),
        (["nope", "--project", "acme"], "no pipeline definition 'nope'"),
        (["counts", "--project", "acme", "--params", "{oops"], "--params is not valid JSON"),
        (["counts", "--project", "acme", "--params", "[1]"], "--params must be a JSON object"),
        (["counts", "--project", "nowhere"], "no project 'nowhere'"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(project, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run(*args)
    assert "\n" not in str(caught.value)


def test_the_command_does_not_run_beside_a_worker(counts):
    claim(counts.pk, worker="celery@box", enable=True)
    with pytest.raises(CommandError, match="held by celery@box until .*; pause it first"):
        run("counts", "--project", "acme", "--until-caught-up")


def test_the_command_refuses_other_parameters_for_an_existing_pipeline(counts):
    with pytest.raises(CommandError, match="create another one"):
        run("counts", "--project", "acme", "--params", '{"batch_events": 5}')

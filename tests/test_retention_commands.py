"""manage.py retention and compact: show, set, dry run, compact, --json and one-line errors.

The graph the compaction tests use::

    v1 - v2 - v3 - v4 - v5 - v6   main
          \\
           v7                     side

Keeping the newest 2 versions keeps v6 and v7 (the heads) and v2 (their merge base);
v1 is released alone, v3..v5 as one run.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from continust.audit.trail import AUDIT_STREAM, audit_stream
from continust.core.errors import StateReleased
from continust.log.policy import make_policy, policy_of
from continust.log.states import state_of
from continust.log.store import fork
from continust.models import Compaction, Event, Version
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(command, *args, stream="pricing"):
    out = StringIO()
    call_command(command, "--project", "acme", "--stream", stream, *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def graph(stream):
    versions = put(stream, *[{"n": i, "text": "x" * 2000 + str(i)} for i in range(1, 7)])
    fork(stream, "side", versions[1])
    (side,) = put(stream, {"side": True, "text": "y" * 2000}, branch="side")
    return {f"v{i}": v.pk for i, v in enumerate([*versions, side], start=1)}


@pytest.fixture
def ephemeral(stream, graph):
    set_policy(stream, make_policy("ephemeral", horizon_versions=2), actor="alice")
    return graph


# -- retention ----------------------------------------------------------------------------


def test_it_shows_the_policy_and_the_footprint(graph):
    lines = run("retention").splitlines()
    assert lines[0] == "pricing: eternal: every event and state is kept"
    assert lines[1].startswith("footprint: ") and " bytes (events " in lines[1]
    assert run("retention", "show") == "\n".join(lines)
    record = json.loads(run("retention", "--json"))
    assert record["policy"] == {"kind": "eternal"}
    assert record["footprint"]["total"] == int(lines[1].split()[1]) > 1_000


def test_it_sets_a_policy_and_records_who(stream):
    text = run("retention", "set", "selective", "--every", "10", "--actor", "ops")
    assert text.splitlines()[0] == "pricing: now selective: a snapshot every 10 versions"
    stream.refresh_from_db()
    assert policy_of(stream).snapshot_every == 10
    record = Event.objects.get(stream__name=AUDIT_STREAM, type="retention.set")
    assert record.actor == "ops"


def test_it_sets_an_ephemeral_horizon_and_prints_json(stream):
    record = json.loads(
        run(
            "retention",
            "set",
            "ephemeral",
            "--horizon-versions",
            "500",
            "--horizon-age",
            "90d",
            "--json",
        )
    )
    assert record["policy"] == {"kind": "ephemeral", "horizon_versions": 500, "horizon_age": "90d"}
    assert record["description"] == (
        "ephemeral: keeps the newest 500 versions and versions younger than 90d"
    )
    run("retention", "set", "eternal")
    stream.refresh_from_db()
    assert stream.retention == "eternal" and stream.horizon_versions is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set"], "set needs a kind: eternal, selective, ephemeral"),
        (["set", "forever"], "'forever' is not a retention policy"),
        (["set", "selective", "--every", "1"], "between 2 and"),
        (["set", "selective", "--every", "ten"], "not a number in the digits 0-9"),
        (["set", "ephemeral"], "needs a horizon"),
        (["set", "ephemeral", "--horizon-age", "3 fortnights"], "not an age"),
        (["set", "ephemeral", "--horizon-age", "99999999999999w"], "at most 5200w"),
        (["set", "ephemeral", "--horizon-versions", str(2**40)], "between 1 and 2147483647"),
        (["set", "eternal", "--every", "5"], "eternal policies take no --every"),
        (
            ["set", "selective", "--horizon-age", "1d", "--horizon-versions", "3"],
            "selective policies take no --horizon-versions, --horizon-age",
        ),
        (["show", "--every", "5"], "go with set, not show"),
        (["show", "selective"], "go with set, not show"),
    ],
)
def test_bad_input_is_a_one_line_error_and_changes_nothing(stream, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run("retention", *args)
    assert "\n" not in str(caught.value)
    stream.refresh_from_db()
    assert stream.retention == "eternal"
    assert not Event.objects.filter(stream__name=AUDIT_STREAM).exists()


def test_an_unknown_stream_and_the_audit_stream_are_errors(project, stream):
    with pytest.raises(CommandError, match="no stream"):
        run("retention", stream="nope")
    audit_stream(project)
    with pytest.raises(CommandError, match="kept forever"):
        run("retention", "set", "ephemeral", "--horizon-versions", "1", stream=AUDIT_STREAM)
    with pytest.raises(CommandError, match="kept forever"):
        run("compact", "--wait", stream=AUDIT_STREAM)


# -- compact ------------------------------------------------------------------------------


def test_the_dry_run_prints_the_plan_and_writes_nothing(stream, ephemeral):
    v = ephemeral
    before = compaction.footprint(stream)
    lines = run("compact", "--dry-run").splitlines()
    assert lines[0] == f"pricing (ephemeral), up to version {v['v7']}:"
    assert lines[1].startswith(
        "  would store 0 snapshots, drop 0 states, release 3 versions in 2 runs (about "
    )
    # The newest 2 of each branch's own history stay: v5, v6 of main; v7 and v2 of side.
    assert lines[2:] == [
        f"  release {v['v1']}..{v['v1']} (1 version)",
        f"  release {v['v3']}..{v['v4']} (2 versions)",
    ]
    plan = json.loads(run("compact", "--dry-run", "--json"))
    assert plan["protected"] == []
    assert plan["runs_total"] == 2
    assert compaction.footprint(stream) == before
    assert Compaction.objects.count() == 0


def test_without_wait_it_requests_a_compaction_for_a_worker(stream, ephemeral):
    text = run("compact", "--actor", "ops")
    job = Compaction.objects.get()
    assert text == f"compaction {job.pk} of pricing pending; a worker runs it"
    assert (job.status, job.requested_by) == ("pending", "ops")
    assert json.loads(run("compact", "--json"))["id"] == job.pk, "one at a time"


def test_wait_runs_it_here_and_prints_the_result(stream, ephemeral):
    v = ephemeral
    text = run("compact", "--wait")
    job = Compaction.objects.get()
    assert job.status == "done" and job.bytes_after < job.bytes_before
    assert text == (
        f"compaction {job.pk} done: 3 versions released in 2 runs, "
        f"{job.states_released} states released, 0 snapshots stored; "
        f"{job.bytes_before} -> {job.bytes_after} bytes"
    )
    with pytest.raises(StateReleased):
        state_of(Version.objects.get(pk=v["v4"]))
    assert state_of(Version.objects.get(pk=v["v2"]))["n"] == 2
    again = json.loads(run("compact", "--wait", "--json"))
    assert again["status"] == "done" and again["versions_released"] == 0
    assert again["bytes_before"] == job.bytes_after


def test_a_failed_compaction_exits_non_zero(stream, ephemeral):
    job = compaction.request(stream, actor="alice")
    Compaction.objects.filter(pk=job.pk).update(attempts=compaction.MAX_ATTEMPTS)
    with pytest.raises(CommandError, match=f"compaction {job.pk} failed: given up after"):
        run("compact", "--wait")


def test_dry_run_and_wait_do_not_go_together(ephemeral):
    with pytest.raises(CommandError, match="not allowed with"):
        run("compact", "--dry-run", "--wait")

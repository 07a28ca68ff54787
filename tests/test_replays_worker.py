"""Replays on a real Celery worker: from the explorer to done, crash and resume, broker down,
cancel, promote, a failing reducer and ``replay --wait``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from continust.audit.integrity import verify
from continust.celery import app
from continust.log.projects import create_stream
from continust.log.reducers import register
from continust.log.store import NewEvent, append
from continust.models import Branch, BranchMove, OutboxMessage, Replay, ReplayStatus, Version
from continust.replays import replay as replays
from tests.conftest import put
from tests.worker import TEST_REDUCERS, fold_merging, fold_refusing, poll

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

register("replaytest", 1, fold_merging)
register("replaytest", 3, fold_refusing)

TIMEOUT = 180
CLOSED_PORT = "redis://127.0.0.1:1/0"


def wait_for(replay, condition, timeout=TIMEOUT):
    """Poll the replay until ``condition(replay)`` holds; return it."""
    return poll(
        replay,
        condition,
        timeout=timeout,
        describe=lambda r: f"replay {r.pk} stuck: {r.status} {r.done}/{r.total} {r.error}",
    )


def finished(replay):
    return replay.finished


def fill(stream, count, batch=500):
    """Append ``count`` events that touch a few keys, so states differ and repeat."""
    versions = []
    for start in range(0, count, batch):
        versions += append(
            stream,
            [
                NewEvent("tick", {"n": n, f"k{n % 7}": n % 5})
                for n in range(start, min(count, start + batch))
            ],
        ).versions
    return versions


def replica_of(replay):
    return {
        v.event_id: v
        for v in Version.objects.filter(stream=replay.stream, branch=replay.shadow_branch)
    }


@pytest.mark.smoke
def test_a_replay_started_in_the_explorer_reaches_done(client, alice, stream, start_worker):
    versions = put(stream, *({"price": n} for n in range(120)))
    start_worker()
    client.force_login(alice)
    response = client.post(
        reverse("replay-start", args=["acme", stream.pk]), {"start": "root", "end": "main"}
    )
    assert response.status_code == 302
    replay = Replay.objects.get()
    assert response.url == reverse("replay", args=["acme", stream.pk, replay.pk])
    replay = wait_for(replay, finished)
    assert replay.status == ReplayStatus.DONE
    assert replay.shadow_head.state_id == versions[-1].state_id
    fragment = client.get(response.url, headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # htmx stops polling
    assert "100%" in fragment.content.decode()
    assert "reproduced the original state exactly" in fragment.content.decode()


def test_a_worker_killed_mid_replay_is_resumed_without_duplicates(stream, start_worker):
    originals = fill(stream, 600)
    first = start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="20", CONTINUST_REPLAY_CHUNK_DELAY_MS="100")
    replay = replays.start_replay(stream, end="main")
    wait_for(replay, lambda r: r.done >= 100)
    first.kill()
    replay.refresh_from_db()
    at_kill = replay.written
    assert replay.status == ReplayStatus.RUNNING and 100 <= at_kill < 600
    assert Version.objects.filter(branch=replay.shadow_branch).count() == at_kill

    start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="20")
    replay = wait_for(replay, finished)
    assert replay.status == ReplayStatus.DONE
    assert replay.attempts == 2
    assert replay.resumed_done == at_kill  # the second run went on from the cursor
    made = Version.objects.filter(stream=stream, branch=replay.shadow_branch)
    assert made.count() == replay.written == 600
    by_event = replica_of(replay)
    assert len(by_event) == 600
    assert [by_event[v.event_id].state_id for v in originals] == [v.state_id for v in originals]
    assert [by_event[v.event_id].digest for v in originals] == [v.digest for v in originals]
    assert verify(stream.project).ok


def test_a_replay_requested_while_the_broker_is_down_runs_once_a_worker_reaches_it(
    stream, start_worker, monkeypatch
):
    put(stream, *({"price": n} for n in range(30)))
    with monkeypatch.context() as patched:
        # Celery reads CELERY_BROKER_URL from the environment before its settings.
        patched.setenv("CELERY_BROKER_URL", CLOSED_PORT)
        patched.setattr(app.conf, "broker_url", CLOSED_PORT)
        replay = replays.start_replay(stream, end="main")
    message = OutboxMessage.objects.get(key=f"replay:{replay.pk}")
    assert message.sent_at is None and message.last_error
    state = replays.progress(replay)
    assert state.queued and "unreachable" in state.label

    start_worker()
    replay = wait_for(replay, finished)
    assert replay.status == ReplayStatus.DONE
    message.refresh_from_db()
    assert message.sent_at is not None


def test_cancel_stops_a_running_replay(client, alice, stream, start_worker):
    fill(stream, 400)
    start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="10", CONTINUST_REPLAY_CHUNK_DELAY_MS="200")
    replay = replays.start_replay(stream, end="main")
    wait_for(replay, lambda r: r.done > 0)
    client.force_login(alice)
    response = client.post(
        reverse("replay-cancel", args=["acme", stream.pk, replay.pk]), {"confirm": "yes"}
    )
    assert response.status_code == 302
    replay = wait_for(replay, finished)
    assert replay.status == ReplayStatus.CANCELLED
    assert 0 < replay.written < 400
    assert Version.objects.filter(branch=replay.shadow_branch).count() == replay.written


def test_promote_moves_the_branch_after_a_worker_replay(client, alice, stream, start_worker):
    put(stream, *({"price": n} for n in range(40)))
    start_worker()
    replay = wait_for(replays.start_replay(stream, end="main"), finished)
    client.force_login(alice)
    response = client.post(
        reverse("replay-promote", args=["acme", stream.pk, replay.pk]), {"confirm": "yes"}
    )
    assert response.status_code == 302
    main = Branch.objects.get(stream=stream, name="main")
    assert main.head.first_parent_id == replay.shadow_head_id
    assert BranchMove.objects.filter(branch=main).latest("id").reason == "promote"


def test_a_failing_reducer_stops_the_replay_on_the_worker(project, start_worker):
    stream = create_stream(project, "tallied", reducer="replaytest", reducer_version=1)
    versions = append(
        stream,
        [NewEvent("set", {"n": n}) for n in range(30)]
        + [NewEvent("boom", {"n": 30})]
        + [NewEvent("set", {"n": n}) for n in range(31, 40)],
    ).versions
    start_worker(CONTINUST_REDUCERS=TEST_REDUCERS, CONTINUST_REPLAY_CHUNK_EVENTS="10")
    replay = wait_for(replays.start_replay(stream, end="main", reducer_version=3), finished)
    assert replay.status == ReplayStatus.FAILED
    assert replay.error_event == versions[30].event.id
    assert "boom events are refused" in replay.error
    assert replay.written == 30  # three committed chunks; the failing one was dropped
    assert Version.objects.filter(branch=replay.shadow_branch).count() == 30


def test_replay_wait_shows_progress_until_done(stream, start_worker):
    fill(stream, 200)
    start_worker(CONTINUST_REPLAY_CHUNK_EVENTS="20", CONTINUST_REPLAY_CHUNK_DELAY_MS="50")
    out = StringIO()
    call_command(
        "replay", "--project", "acme", "--stream", "pricing", "--to", "main", "--wait", stdout=out
    )
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3
    assert "200/200 (100%)" in lines[-2]
    assert lines[-1].startswith("replay ") and " done: 200 versions written" in lines[-1]

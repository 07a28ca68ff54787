"""Replays run in-process: ranges, determinism, filters, failures, fencing, cancel, promote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from continust.audit.integrity import verify
from continust.celery import app
from continust.core.errors import ConcurrencyConflict, ContinustError, InvalidEvent
from continust.graph.cache import graph_for
from continust.graph.parents import parents_of
from continust.jobs import outbox
from continust.log.projects import create_stream
from continust.log.reducers import register
from continust.log.states import state_of
from continust.log.store import NewEvent, append, fork, merge
from continust.models import (
    Branch,
    BranchMove,
    OutboxMessage,
    Replay,
    ReplayStatus,
    Version,
)
from continust.replays import replay as replays
from tests.conftest import put
from tests.worker import fold_merging, fold_refusing

pytestmark = pytest.mark.django_db


def fold_marking(state, event):
    """replaytest@2: the merge reducer, also counting the events it folded."""
    return {**fold_merging(state, event), "folded": state.get("folded", 0) + 1}


register("replaytest", 1, fold_merging)
register("replaytest", 2, fold_marking)
register("replaytest", 3, fold_refusing)


@pytest.fixture
def tallied(project):
    """A stream folded by replaytest@1, which versions 2 and 3 of it can replay."""
    return create_stream(project, "tallied", reducer="replaytest", reducer_version=1)


def build_history(stream):
    """Write a history with a side branch merged back::

    main:  r - a - b - M - d
                \\     /
    side:        x - y
    """
    r, a = put(stream, {"price": 10}, {"tier": "basic"})
    fork(stream, "side", a)
    x, y = put(stream, {"discount": 5}, {"color": "blue"}, branch="side")
    (b,) = put(stream, {"price": 12})
    m = merge(stream, "side", "main")
    (d,) = put(stream, {"price": 14})
    return {"r": r, "a": a, "x": x, "y": y, "b": b, "m": m, "d": d}


@pytest.fixture
def history(stream):
    return build_history(stream)


def replicas(replay):
    """Return the replay's versions by the event each one made again."""
    versions = Version.objects.filter(stream=replay.stream, branch=replay.shadow_branch)
    return {v.event_id: v for v in versions.order_by("id")}


def finished(replay):
    replay.refresh_from_db()
    return replay


def test_replaying_with_the_same_reducers_reproduces_every_state_hash(stream, history):
    replay = replays.start_replay(stream, end="main")
    assert replay.total == 7
    assert replays.run(replay.pk) == ReplayStatus.DONE
    replay = finished(replay)
    made = replicas(replay)
    assert len(made) == 7 == replay.written
    for original in history.values():
        copy = made[original.event_id]
        assert copy.pk != original.pk
        assert copy.state_id == original.state_id
        assert copy.digest == original.digest
    assert (
        Branch.objects.get(stream=stream, name=replay.shadow_branch).head
        == made[history["d"].event_id]
    )
    assert replay.shadow_head_id == made[history["d"].event_id].pk
    assert verify(stream.project).ok


def test_the_merge_of_a_replay_hangs_on_the_replayed_side_branch(stream, history):
    replay = replays.start_replay(stream, end="main")
    replays.run(replay.pk)
    made = replicas(finished(replay))
    merge_copy = made[history["m"].event_id]
    parents = parents_of(merge_copy)
    assert parents == [made[history["b"].event_id].pk, made[history["y"].event_id].pk]


def test_a_replay_from_a_version_starts_on_top_of_it(stream, history):
    replay = replays.start_replay(stream, start=history["a"].pk, end="main")
    assert replay.total == 5  # x, y, b, M, d
    replays.run(replay.pk)
    made = replicas(finished(replay))
    assert history["a"].event_id not in made
    first = made[history["x"].event_id]
    assert parents_of(first) == [history["a"].pk]
    assert made[history["d"].event_id].digest == history["d"].digest
    assert verify(stream.project).ok


def test_it_leaves_out_skipped_types_and_events_and_those_after_until(stream):
    early = datetime(2024, 1, 1, tzinfo=UTC)
    events = [
        NewEvent("price.set", {"price": 10}, timestamp=early),
        NewEvent("note.added", {"note": "hello"}, timestamp=early + timedelta(hours=1)),
        NewEvent("price.set", {"price": 11}, timestamp=early + timedelta(hours=2)),
        NewEvent("price.set", {"price": 12}, timestamp=early + timedelta(hours=3)),
        NewEvent("price.set", {"price": 13}, timestamp=early + timedelta(days=2)),
    ]
    versions = append(stream, events).versions
    replay = replays.start_replay(
        stream,
        end="main",
        skip_types=["note.added"],
        skip_events=[str(versions[3].event.id)],
        until=early + timedelta(days=1),
    )
    replays.run(replay.pk)
    replay = finished(replay)
    assert (replay.status, replay.done, replay.written) == ("done", 5, 2)
    made = replicas(replay)
    assert set(made) == {versions[0].event_id, versions[2].event_id}
    assert replay.shadow_head.state.data == {"price": 11}
    second = made[versions[2].event_id]
    assert parents_of(second) == [made[versions[0].event_id].pk]
    assert verify(stream.project).ok


def test_another_reducer_version_makes_other_states(tallied):
    stream, history = tallied, build_history(tallied)
    replay = replays.start_replay(stream, end="main", reducer_version=2)
    replays.run(replay.pk)
    replay = finished(replay)
    assert replay.status == "done"
    head = replay.shadow_head
    assert head.state.data["price"] == 14
    assert head.state.data["folded"] == 4  # r, a, b and d on main; the merge took its side's
    assert {c.path for c in replays.shadow_diff(replay)} == {"/folded"}
    made = replicas(replay)
    assert made[history["m"].event_id].reducer == "merge3"
    assert made[history["d"].event_id].reducer_version == 2
    assert verify(stream.project).ok


def test_a_failing_reducer_stops_the_replay_with_the_event_and_the_error(tallied, settings):
    stream = tallied
    settings.CONTINUST_REPLAY_CHUNK_EVENTS = 2
    events = [NewEvent("set", {"n": n}) for n in range(4)] + [
        NewEvent("boom", {"n": 4}),
        NewEvent("set", {"n": 5}),
    ]
    versions = append(stream, events).versions
    replay = replays.start_replay(stream, end="main", reducer_version=3)
    assert replays.run(replay.pk) == ReplayStatus.FAILED
    replay = finished(replay)
    assert replay.error_event == versions[4].event.id
    assert "boom events are refused" in replay.error
    # Two chunks of two were committed; the chunk holding the failing event was dropped.
    assert (replay.done, replay.written) == (4, 4)
    made = replicas(replay)
    assert set(made) == {v.event_id for v in versions[:4]}
    assert replay.shadow_head == made[versions[3].event_id]
    assert Branch.objects.get(name=replay.shadow_branch).head == replay.shadow_head
    assert verify(stream.project).ok


@pytest.mark.parametrize(
    "request_args, message",
    [
        ({"end": "nope"}, "no version, branch, tag or key 'nope'"),
        ({"end": "main", "reducer_version": 9}, "no reducer merge@9"),
        ({"end": "main", "skip_events": ["not-a-uuid"]}, "is not an event id"),
        ({"start": "main", "end": "main"}, "nothing to replay"),
    ],
)
def test_it_refuses_a_bad_request_and_records_nothing(stream, history, request_args, message):
    with pytest.raises(ContinustError, match=message):
        replays.start_replay(stream, **request_args)
    assert not Replay.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_it_refuses_a_start_that_is_not_an_ancestor_of_the_end(stream, history):
    (later,) = put(stream, {"late": True}, branch="side")
    with pytest.raises(InvalidEvent, match=f"version {later.pk} is not an ancestor"):
        replays.start_replay(stream, start=later.pk, end="main")


def test_the_request_and_its_task_message_commit_or_roll_back_together(stream, history):
    with pytest.raises(RuntimeError), transaction.atomic():
        replays.start_replay(stream, end="main")
        assert OutboxMessage.objects.count() == 1
        raise RuntimeError("the user's transaction fails after the request")
    assert not Replay.objects.exists()
    assert not OutboxMessage.objects.exists()
    replay = replays.start_replay(stream, end="main")
    message = OutboxMessage.objects.get()
    assert (message.task, message.args, message.key) == (
        replays.TASK,
        [replay.pk],
        f"replay:{replay.pk}",
    )


def test_an_unreachable_broker_leaves_the_request_waiting(stream, history, monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment before its settings.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    replay = replays.start_replay(stream, end="main")
    assert outbox.dispatch() == 0
    message = OutboxMessage.objects.get()
    assert message.sent_at is None and message.attempts == 1
    assert "OperationalError" in message.last_error
    state = replays.progress(replay)
    assert state.queued and state.label.startswith("waiting for a worker")


def test_a_second_claim_finds_the_lease_held_until_it_lapses(stream, history):
    replay = replays.start_replay(stream, end="main")
    token = replays.claim(replay.pk, worker="one")
    assert token == 1
    assert replays.claim(replay.pk, worker="two") is None
    Replay.objects.filter(pk=replay.pk).update(lease_expires_at=timezone.now())
    assert replays.claim(replay.pk, worker="two") == 2


def test_a_holder_whose_lease_was_taken_over_writes_nothing_more_and_the_next_run_resumes(
    stream, settings, monkeypatch
):
    settings.CONTINUST_REPLAY_CHUNK_EVENTS = 3
    settings.CONTINUST_REPLAY_CHUNK_DELAY_MS = 1
    versions = put(stream, *({"n": n, f"k{n % 4}": n} for n in range(10)))
    replay = replays.start_replay(stream, end="main")

    def taken_over(seconds):
        # While this worker pauses after its first chunk, its lease lapses and another
        # delivery claims the replay: the token changes under it.
        Replay.objects.filter(pk=replay.pk).update(lease_expires_at=timezone.now())
        assert replays.claim(replay.pk, worker="other") is not None
        Replay.objects.filter(pk=replay.pk).update(lease_expires_at=timezone.now())

    monkeypatch.setattr(replays.time, "sleep", taken_over)
    assert replays.run(replay.pk, worker="first") == replays.LOST
    assert finished(replay).written == 3
    monkeypatch.setattr(replays.time, "sleep", lambda seconds: None)
    assert replays.run(replay.pk, worker="second") == ReplayStatus.DONE
    replay = finished(replay)
    made = replicas(replay)
    assert replay.written == len(made) == 10
    assert Version.objects.filter(branch=replay.shadow_branch).count() == 10
    assert [made[v.event_id].state_id for v in versions] == [v.state_id for v in versions]
    assert verify(stream.project).ok


def test_a_run_of_a_finished_replay_does_nothing(stream, history):
    replay = replays.start_replay(stream, end="main")
    replays.run(replay.pk)
    assert replays.run(replay.pk) == replays.SKIPPED
    assert Version.objects.filter(branch=replay.shadow_branch).count() == 7


def test_cancel_before_a_worker_takes_it_is_immediate(stream, history):
    replay = replays.start_replay(stream, end="main")
    assert replays.cancel(replay).status == ReplayStatus.CANCELLED
    assert replays.run(replay.pk) == replays.SKIPPED
    assert not Version.objects.filter(branch=replay.shadow_branch).exists()
    with pytest.raises(InvalidEvent, match="already cancelled"):
        replays.cancel(replay)


def test_cancel_while_running_stops_at_the_next_commit(stream, settings, monkeypatch):
    settings.CONTINUST_REPLAY_CHUNK_EVENTS = 2
    settings.CONTINUST_REPLAY_CHUNK_DELAY_MS = 1
    put(stream, *({"n": n} for n in range(8)))
    replay = replays.start_replay(stream, end="main")
    monkeypatch.setattr(
        replays.time, "sleep", lambda seconds: replays.cancel(Replay.objects.get(pk=replay.pk))
    )
    assert replays.run(replay.pk) == ReplayStatus.CANCELLED
    replay = finished(replay)
    assert (replay.status, replay.written, replay.done) == ("cancelled", 2, 2)
    assert Version.objects.filter(branch=replay.shadow_branch).count() == 2


def test_promote_moves_the_branch_to_the_shadow_head_and_records_it(tallied):
    stream, history = tallied, build_history(tallied)
    replay = replays.start_replay(stream, end="main", reducer_version=2)
    replays.run(replay.pk)
    replay = finished(replay)
    branch = replays.promote(replay, actor="alice")
    promoted = branch.head
    assert branch.name == "main"
    assert parents_of(promoted) == [
        replay.shadow_head_id,
        history["d"].pk,
    ]
    assert promoted.state_id == replay.shadow_head.state_id
    assert (promoted.event.type, promoted.reducer) == ("continust.promote", "ours")
    move = BranchMove.objects.filter(branch=branch).order_by("-id").first()
    assert (move.reason, move.actor, move.old_head_id, move.new_head_id) == (
        "promote",
        "alice",
        history["d"].pk,
        promoted.pk,
    )
    assert finished(replay).promoted_by == "alice"
    with pytest.raises(InvalidEvent, match="already promoted"):
        replays.promote(replay)
    assert verify(stream.project).ok


def test_promote_from_the_root_keeps_the_old_history_connected(stream, history):
    """Promote merges, as ``git merge -s ours``: the old head stays an ancestor of the new
    one, every branch keeps a merge base with main, and verify passes."""
    fork(stream, "feature", history["b"])
    put(stream, {"feature": True}, branch="feature")
    replay = replays.start_replay(stream, start="root", end="main", skip_types=["nothing"])
    replays.run(replay.pk)
    replay = finished(replay)
    main = replays.promote(replay, actor="alice")
    graph = graph_for(stream)
    assert graph.is_ancestor(history["d"].pk, main.head_id)
    assert graph.is_ancestor(replay.shadow_head_id, main.head_id)
    for branch in Branch.objects.filter(stream=stream).exclude(name="main"):
        assert graph.merge_bases(branch.head_id, main.head_id), branch.name
    assert graph.merge_bases(
        Branch.objects.get(stream=stream, name="feature").head_id, main.head_id
    ) == [history["b"].pk]
    assert state_of(main.head_id) == state_of(history["d"].pk)
    assert verify(stream.project).ok


def test_promote_refuses_when_the_branch_moved_since_the_replay(stream, history):
    replay = replays.start_replay(stream, end="main")
    replays.run(replay.pk)
    put(stream, {"price": 15})
    with pytest.raises(ConcurrencyConflict, match="replay again up to its new head"):
        replays.promote(finished(replay))


def test_promote_refuses_an_unfinished_replay(stream, history):
    replay = replays.start_replay(stream, end="main")
    with pytest.raises(InvalidEvent, match="only a done replay"):
        replays.promote(replay)


def test_a_replay_whose_worker_vanished_is_sent_again_once(stream, history):
    replay = replays.start_replay(stream, end="main")
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(seconds=5))
    replays.claim(replay.pk)
    assert replays.resend_stale() == 0  # the lease is live
    Replay.objects.filter(pk=replay.pk).update(lease_expires_at=timezone.now())
    assert replays.resend_stale() == 1
    assert replays.resend_stale() == 0  # already waiting to be sent
    assert OutboxMessage.objects.filter(key=f"replay:{replay.pk}").count() == 2
    assert replays.progress(finished(replay)).label == "waiting for a worker to resume it"


def test_progress_reports_counts_and_percent(stream, history):
    replay = replays.start_replay(stream, end="main")
    assert replays.progress(replay).percent == 0
    replays.run(replay.pk)
    state = replays.progress(finished(replay))
    assert (state.done, state.total, state.percent, state.finished) == (7, 7, 100, True)
    assert "7/7 (100%)" in state.line()


def test_an_event_id_can_be_skipped_by_its_uuid_text(stream):
    versions = put(stream, {"a": 1}, {"b": 2})
    event = versions[1].event.id
    replay = replays.start_replay(stream, end="main", skip_events=[uuid.UUID(str(event))])
    replays.run(replay.pk)
    assert finished(replay).shadow_head.state.data == {"a": 1}


def test_a_long_range_is_counted_by_the_worker(stream, history, monkeypatch):
    monkeypatch.setattr(replays, "REQUEST_PLAN_LIMIT", 3)
    replay = replays.start_replay(stream, end="main")
    assert replay.total == 0
    assert replays.progress(replay).percent == 0
    replays.run(replay.pk)
    replay = finished(replay)
    assert (replay.status, replay.total, replay.done) == ("done", 7, 7)


def test_a_start_off_the_ends_history_found_by_the_worker_fails_the_replay(
    stream, history, monkeypatch
):
    monkeypatch.setattr(replays, "REQUEST_PLAN_LIMIT", 0)
    (later,) = put(stream, {"late": True}, branch="side")
    (newest,) = put(stream, {"price": 20})
    replay = replays.start_replay(stream, start=later.pk, end=newest.pk)
    assert replays.run(replay.pk) == ReplayStatus.FAILED
    replay = finished(replay)
    assert replay.error == f"version {later.pk} is not an ancestor of version {newest.pk}"
    assert not Version.objects.filter(branch=replay.shadow_branch).exists()

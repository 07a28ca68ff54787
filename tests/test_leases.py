"""The one lease protocol of background jobs (continust.jobs.leases), for each kind of job.

A job's life under leases, the fence in brackets:

    waiting --claim(A)--> running [1] --A's lease lapses--> running [1], lapsed
                                                               |
                            claim(B) while A lives: refused    claim(B)
                                                               v
                          A's writes: LeaseLost / refused   running [2], held by B
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from continust.core.errors import InvalidEvent
from continust.jobs import leases, outbox
from continust.jobs.leases import Lease, LeaseLost
from continust.models import (
    Compaction,
    CompactionStatus,
    OutboxMessage,
    Pipeline,
    PipelineStatus,
    Replay,
    ReplayStatus,
)
from continust.pipelines import control
from continust.pipelines.runner import PIPELINES
from continust.replays import replay as replays
from continust.retention import compaction
from tests.conftest import put

KINDS = ["replay", "compaction", "pipeline"]


def make_job(kind: str, stream: Any) -> tuple[leases.Kind, Any]:
    """A job of ``kind`` that wants a worker, its request's message sent an hour ago."""
    if kind == "replay":
        put(stream, {"price": 1}, {"price": 2})
        job: Any = replays.start_replay(stream, end="main")
        leased = replays.REPLAYS
    elif kind == "compaction":
        put(stream, {"price": 1})
        job = compaction.request(stream, actor="alice")
        leased = compaction.COMPACTIONS
    else:
        job = control.start(
            control.create_pipeline(stream.project, "counts", definition="event-counts")
        )
        leased = PIPELINES
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(hours=1))
    return leased, job


def lapse(lease: Lease) -> None:
    """What the clock does to the lease of a worker that died."""
    lease.kind.rows().filter(pk=lease.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def row(lease: Lease) -> Any:
    return lease.kind.rows().get(pk=lease.pk)


@pytest.fixture(params=KINDS)
def job(request: pytest.FixtureRequest, stream: Any) -> tuple[leases.Kind, Any]:
    return make_job(request.param, stream)


def test_a_claim_takes_the_job_with_the_first_fence(job):
    kind, found = job
    lease = leases.claim(kind, found.pk, worker="celery@one")
    assert lease == Lease(kind, found.pk, 1)
    held = row(lease)
    assert (held.fence, held.worker, held.attempts, held.status) == (1, "celery@one", 1, "running")
    assert leases.is_live(held)
    assert held.lease_expires_at == lease.expires_at > timezone.now()


def test_a_second_claim_is_refused_while_the_lease_lives(job):
    kind, found = job
    first = leases.claim(kind, found.pk, worker="one")
    assert leases.claim(kind, found.pk, worker="two") is None
    held = row(first)
    assert (held.fence, held.worker, held.attempts) == (1, "one", 1)


def test_a_lapsed_lease_is_claimed_again_with_a_higher_fence(job):
    kind, found = job
    first = leases.claim(kind, found.pk, worker="one")
    lapse(first)
    assert not leases.is_live(row(first))
    assert kind.rows().filter(leases.lapsed(), pk=found.pk).exists()
    second = leases.claim(kind, found.pk, worker="two")
    assert second is not None and second.fence == first.fence + 1 == 2
    held = row(second)
    assert (held.worker, held.attempts) == ("two", 2)
    assert not kind.rows().filter(leases.lapsed(), pk=found.pk).exists()


def test_the_stale_holder_can_neither_hold_nor_renew_nor_release(job):
    kind, found = job
    stale = leases.claim(kind, found.pk, worker="one")
    lapse(stale)
    fresh = leases.claim(kind, found.pk, worker="two")
    with pytest.raises(LeaseLost, match="token 1"), transaction.atomic():
        leases.hold(stale)
    with pytest.raises(LeaseLost):
        leases.renew(stale, error="the stale holder was here")
    assert not leases.release(stale, error="the stale holder was here")
    held = row(fresh)
    assert (held.fence, held.worker, held.error) == (2, "two", "")
    assert held.lease_expires_at == fresh.expires_at  # neither renewed nor released
    # The holder's own writes go through.
    with transaction.atomic():
        assert leases.hold(fresh)["fence"] == 2
    assert leases.renew(fresh) > fresh.expires_at
    assert leases.release(fresh, worker="")
    assert row(fresh).lease_expires_at is None


def test_a_job_that_left_the_running_status_is_no_longer_held(stream):
    kind, found = make_job("replay", stream)
    lease = leases.claim(kind, found.pk)
    Replay.objects.filter(pk=found.pk).update(status=ReplayStatus.CANCELLED)
    with pytest.raises(LeaseLost), transaction.atomic():
        leases.hold(lease)
    assert not leases.release(lease, status=ReplayStatus.FAILED)
    assert Replay.objects.get(pk=found.pk).status == ReplayStatus.CANCELLED


def test_a_paused_pipeline_stays_held_until_its_holder_lets_go(stream):
    # Pausing is noticed at the heartbeat: the status is no fence for pipelines.
    kind, found = make_job("pipeline", stream)
    lease = leases.claim(kind, found.pk)
    Pipeline.objects.filter(pk=found.pk).update(status=PipelineStatus.PAUSED, enabled=False)
    with transaction.atomic():
        assert leases.hold(lease, "enabled")["enabled"] is False
    assert leases.release(lease, worker="")


def test_a_revoked_job_refuses_its_old_holder_and_is_free_to_claim(stream):
    kind, found = make_job("pipeline", stream)
    old = leases.claim(kind, found.pk, worker="one")
    lapse(old)
    leases.revoke(kind, found.pk, status=PipelineStatus.WAITING)
    with pytest.raises(LeaseLost), transaction.atomic():
        leases.hold(old)
    revoked = row(old)
    assert (revoked.fence, revoked.worker, revoked.lease_expires_at) == (2, "", None)
    assert leases.claim(kind, found.pk) == Lease(kind, found.pk, 3)


def test_stale_jobs_of_every_kind_are_sent_again_once(stream):
    jobs = [make_job(kind, stream) for kind in KINDS]
    # Waiting with their messages sent an hour ago: never claimed, so sent again.
    assert leases.resend_stale() == 3
    assert leases.resend_stale() == 0  # the new messages wait in the outbox
    for kind, found in jobs:
        assert OutboxMessage.objects.filter(key=kind.key(found), task=kind.task).count() == 2
    OutboxMessage.objects.update(sent_at=timezone.now() - timedelta(minutes=30))
    held = [leases.claim(kind, found.pk) for kind, found in jobs]
    assert leases.resend_stale() == 0  # every lease lives
    for lease in held:
        assert lease is not None
        lapse(lease)
    assert leases.resend_stale() == 3
    assert leases.resend_stale() == 0
    for kind, found in jobs:
        assert OutboxMessage.objects.filter(key=kind.key(found)).count() == 3
        assert OutboxMessage.objects.filter(key=kind.key(found), sent_at__isnull=True).count() == 1


def test_a_running_job_is_not_sent_again_before_its_lease_lapsed_past_its_last_message(stream):
    kind, found = make_job("compaction", stream)
    lease = leases.claim(kind, found.pk)
    assert lease is not None
    lapse(lease)
    # Its last message went after the lease lapsed (a delivery already on its way).
    OutboxMessage.objects.update(sent_at=timezone.now())
    assert leases.resend_stale(kind) == 0


def test_the_sweep_leaves_finished_and_paused_jobs_alone(stream):
    jobs = [make_job(kind, stream) for kind in KINDS]
    Replay.objects.update(status=ReplayStatus.DONE)
    Compaction.objects.update(status=CompactionStatus.FAILED)
    control.pause(jobs[2][1])
    assert leases.resend_stale() == 0


def test_the_outbox_sweep_is_the_one_resend():
    assert leases.resend_stale in outbox._sweeps
    assert {kind.name for kind in leases.kinds()} >= set(KINDS)
    for own in (replays.resend_stale, control.resend_stale):
        assert own not in outbox._sweeps


def test_a_compaction_that_lost_its_lease_does_not_record_its_failure(stream, monkeypatch):
    put(stream, {"price": 1}, {"price": 2})
    job = compaction.request(stream, actor="alice")
    taken: list[Lease | None] = []

    def taken_over_then_fails(*args: Any, **kwargs: Any) -> Any:
        # While this run plans, its lease lapses and another worker claims the compaction;
        # then the planning fails.
        Compaction.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
        taken.append(leases.claim(compaction.COMPACTIONS, job.pk, worker="other"))
        raise InvalidEvent("the plan failed")

    monkeypatch.setattr(compaction, "plan", taken_over_then_fails)
    compaction.run(job.pk, worker="first")
    job.refresh_from_db()
    assert taken == [Lease(compaction.COMPACTIONS, job.pk, 2)]
    assert (job.status, job.error, job.fence, job.worker) == ("running", "", 2, "other")
    assert job.lease_expires_at is not None and job.finished_at is None


def test_a_compaction_that_holds_its_lease_records_its_failure(stream, monkeypatch):
    put(stream, {"price": 1})
    job = compaction.request(stream, actor="alice")

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise InvalidEvent("the plan failed")

    monkeypatch.setattr(compaction, "plan", fails)
    done = compaction.run(job.pk, worker="first")
    assert (done.status, done.error, done.lease_expires_at) == ("failed", "the plan failed", None)


@pytest.mark.django_db(transaction=True)
def test_migration_0012_keeps_the_leases_of_existing_jobs(stream):
    put(stream, {"price": 1})
    end = stream.versions.get()
    executor = MigrationExecutor(connection)
    before = [("continust", "0011_refuse_truncate")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    expires = timezone.now() + timedelta(minutes=5)
    replay = old.get_model("continust", "Replay").objects.create(
        stream_id=stream.pk,
        end_id=end.pk,
        fence=7,
        lease_expires_at=expires,
        worker="w",
        attempts=2,
    )
    compacting = old.get_model("continust", "Compaction").objects.create(
        stream_id=stream.pk, policy={"kind": "eternal"}, upto=end.pk, fence=3, attempts=1
    )
    pipeline = old.get_model("continust", "Pipeline").objects.create(
        project_id=stream.project_id, name="p", definition="event-counts", fence=5, worker="x"
    )
    old.get_model("continust", "PipelineRun").objects.create(
        pipeline_id=pipeline.pk, fence=5, started_at=timezone.now()
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    replayed = Replay.objects.get(pk=replay.pk)
    assert (replayed.fence, replayed.lease_expires_at, replayed.worker, replayed.attempts) == (
        7,
        expires,
        "w",
        2,
    )
    compacted = Compaction.objects.get(pk=compacting.pk)
    assert (compacted.fence, compacted.attempts, compacted.worker) == (3, 1, "")
    piped = Pipeline.objects.get(pk=pipeline.pk)
    assert (piped.fence, piped.worker, piped.attempts) == (5, "x", 0)
    assert piped.runs.get().fence == 5
    # The fence now holds what a bigint holds, on every kind.
    Compaction.objects.filter(pk=compacting.pk).update(fence=2**40)
    assert leases.claim(compaction.COMPACTIONS, compacting.pk) == Lease(
        compaction.COMPACTIONS, compacting.pk, 2**40 + 1
    )

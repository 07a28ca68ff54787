"""Compaction on a real Celery worker: requested, run by the worker, killed and resumed."""

from __future__ import annotations

from typing import Any

import pytest

from continust.audit.integrity import verify
from continust.log.policy import make_policy
from continust.models import Compaction, CompactionStatus, ReleasedVersion, Stream
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put
from tests.worker import poll

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 180


def wait_for(job: Compaction, condition: Any, timeout: float = TIMEOUT) -> Compaction:
    return poll(
        job,
        condition,
        timeout=timeout,
        describe=lambda j: f"compaction {j.pk} stuck: {j.status} {j.phase} {j.cursor} {j.error}",
    )


@pytest.mark.smoke
def test_a_requested_compaction_is_run_by_the_worker(stream: Stream, start_worker: Any) -> None:
    put(stream, *({"n": n, "pad": "x" * 100} for n in range(60)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=10), actor="alice")
    start_worker()
    job = wait_for(
        compaction.request(stream, actor="alice"), lambda j: j.status not in compaction.ACTIVE
    )
    assert job.status == CompactionStatus.DONE, job.error
    assert job.versions_released == 50
    assert job.bytes_after < job.bytes_before
    assert ReleasedVersion.objects.count() == 50
    assert verify(streams=[Stream.objects.get(pk=stream.pk)]).ok


def test_a_worker_killed_mid_compaction_is_resumed(stream: Stream, start_worker: Any) -> None:
    for start in range(0, 2000, 500):
        put(stream, *({"n": n} for n in range(start, start + 500)))
    set_policy(stream, make_policy("selective", snapshot_every=50), actor="alice")
    # One event per append from here: every head's state was stored, most must go.
    for n in range(300):
        put(stream, {"tail": n})
    first = start_worker(
        CONTINUST_COMPACTION_CHUNK="10",
        CONTINUST_COMPACTION_LEASE_SECONDS="2",
        CONTINUST_COMPACTION_CHUNK_DELAY_MS="30",
    )
    job = compaction.request(stream, actor="alice")
    job = wait_for(job, lambda j: j.phase == "release" and j.cursor > 0)
    first.kill()
    job.refresh_from_db()
    assert job.status == CompactionStatus.RUNNING
    start_worker(
        CONTINUST_COMPACTION_CHUNK="10",
        CONTINUST_COMPACTION_RESEND_SECONDS="1",
        CONTINUST_OUTBOX_INTERVAL_SECONDS="1",
    )
    job = wait_for(job, lambda j: j.status not in compaction.ACTIVE)
    assert job.status == CompactionStatus.DONE, job.error
    assert job.attempts == 2
    # 2,300 versions: the grid (46) and the head keep their states.
    assert job.states_released == 2300 - 46 - 1
    assert verify(streams=[Stream.objects.get(pk=stream.pk)]).ok

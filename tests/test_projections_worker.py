"""A projection on a real Celery worker killed mid-way: every event lands exactly once.

The worker is killed (SIGKILL, as a crash) three times, at random moments inside and
between batches; the next worker takes the projection over once the lease lapses, from the
position of the last committed batch. The table ends with one row per event, none
missing and none twice, and the built-in counts agree with the log.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import Event
from continust.projections import control, registry, tables
from tests import projections_support as support
from tests.worker import poll

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EVENTS = 300
SETTINGS = {
    "CONTINUST_PROJECTIONS": ",".join(support.SETTING),
    "CONTINUST_PROJECTION_LEASE_SECONDS": "3",
    "CONTINUST_PROJECTION_RESEND_SECONDS": "2",
    "CONTINUST_PROJECTION_BATCH_DELAY_MS": "60",
}
TIMEOUT = 300  # PostgreSQL: appends are read once older transactions on the server end


@pytest.fixture
def registered(settings):
    settings.CONTINUST_PROJECTIONS = support.SETTING
    registry.reload()
    yield
    settings.CONTINUST_PROJECTIONS = []
    registry.reload()


def wait_for(row, condition, what):
    return poll(
        row,
        condition,
        timeout=TIMEOUT,
        interval=0.05,
        describe=lambda r: f"projection never {what}: {r.status} events {r.events} {r.error}",
    )


def test_killed_three_times_mid_way_it_applies_every_event_exactly_once(
    registered, project, start_worker
):
    streams = [create_stream(project, f"s{i}") for i in range(3)]
    for i in range(0, EVENTS, 50):
        append(
            streams[i // 50 % 3],
            [NewEvent("order.placed" if j % 2 else "order.paid", {"n": i + j}) for j in range(50)],
        )
    row = control.get_projection(project, "slow_log")
    worker = start_worker(**SETTINGS)
    control.start(row)
    rng = random.Random(15)
    for target in (40, 120, 200):
        wait_for(row, lambda r, t=target: r.events >= t, f"read {target} events")
        # A batch takes its delay (60 ms) and its work: land inside one or between two.
        time.sleep(rng.uniform(0, 0.15))
        worker.kill()
        row.refresh_from_db()
        assert row.events < EVENTS, "killed too late: the projection had caught up"
        worker = start_worker(**SETTINGS)
    wait_for(row, lambda r: r.events == EVENTS and r.status == "idle", "caught up")
    assert control.describe(row).lag == 0 and row.error == ""
    table = tables.names(row, registry.get("slow_log"), row.generation)["seen"]
    seen = [event_id for event_id, _ in support.rows(table)]
    expected = sorted(
        str(i) for i in Event.objects.filter(project=project).values_list("id", flat=True)
    )
    assert seen == expected  # one row per event: none lost, none applied twice

    # The built-in projection, woken by the worker's sweep, counts the log exactly too.
    counts = control.get_projection(project, "event_counts")
    wait_for(counts, lambda r: r.events == EVENTS and r.status == "idle", "counted")
    by_type = Counter(Event.objects.filter(project=project).values_list("type", flat=True))
    counted = Counter()
    for _day, kinds, _total in control.activity(project).days:
        for kind, n in kinds:
            counted[kind] += n
    assert counted == by_type

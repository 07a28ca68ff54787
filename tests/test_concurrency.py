"""Several processes appending to one stream with expected heads and retries."""

from __future__ import annotations

import multiprocessing

import pytest
from django.db import connection

from continust.audit.integrity import verify
from continust.log.projects import create_project, create_stream
from continust.models import Event, Version
from tests.writer_process import append_with_retries

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WRITERS = 4
EVENTS_EACH = 25


def test_concurrent_writers_lose_and_duplicate_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("several processes on one SQLite file are covered by its writer lock")
    stream = create_stream(create_project("race"), "counter")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(
            target=append_with_retries,
            args=(connection.settings_dict["NAME"], w, EVENTS_EACH, queue),
        )
        for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    for _ in workers:
        queue.get(timeout=5)
    events = list(Event.objects.filter(stream=stream).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, WRITERS * EVENTS_EACH + 1))
    assert len({e.id for e in events}) == WRITERS * EVENTS_EACH
    versions = Version.objects.filter(stream=stream).order_by("generation")
    assert [v.generation for v in versions] == list(range(WRITERS * EVENTS_EACH))
    final = versions.last().state.data
    assert final == {f"w{w}": EVENTS_EACH - 1 for w in range(WRITERS)}
    assert verify().ok

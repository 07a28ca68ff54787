"""Persistent subscriptions' consumers as Celery tasks on real workers: competing
consumers on two workers, retries, parking and replaying parked events."""

from __future__ import annotations

import time

import pytest

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import MessageStatus, Subscription, SubscriptionMessage
from continust.subscriptions import registry
from tests.conftest import put
from tests.subscriptions_support import copies, make_sink
from tests.test_subscriptions import log_ids

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 180
QUICK = {"CONTINUST_SUBSCRIPTION_TASK_SECONDS": "4"}


def wait_until(condition, describe):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(0.2)


def test_consumers_on_two_workers_handle_each_event_once(start_worker):
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    subscription = registry.create_subscription(
        stream.project,
        "workers",
        kind="persistent",
        handler="tests.subscriptions_support.copy_to_sink",
        consumers=2,
    )
    start_worker(**QUICK)
    start_worker(**QUICK)
    assert registry.start_consumers(subscription) == 2
    for k in range(10):
        put(stream, *({"k": k, "i": i} for i in range(20)))
    wait_until(lambda: len(copies()) >= 200, lambda: f"{len(copies())} of 200 copied")
    assert sorted(copies()) == sorted(log_ids(stream.project))
    assert len(copies()) == 200
    wait_until(
        lambda: not SubscriptionMessage.objects.exists(),
        lambda: f"{SubscriptionMessage.objects.count()} messages left",
    )
    (shown,) = registry.overview(stream.project)
    assert (shown.lag, shown.parked) == (0, 0)
    registry.stop_consumers(subscription)


def test_a_worker_retries_parks_after_max_attempts_and_replays(start_worker):
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    subscription = registry.create_subscription(
        stream.project,
        "workers",
        kind="persistent",
        handler="tests.subscriptions_support.refuse_boom",
        max_attempts=3,
        backoff_seconds=0.2,
    )
    start_worker(**QUICK)
    registry.start_consumers(subscription)
    put(stream, {"n": 1})
    append(stream, [NewEvent(type="boom", payload={"n": 2})])
    put(stream, {"n": 3})
    parked = SubscriptionMessage.objects.filter(status=MessageStatus.PARKED)
    wait_until(
        lambda: parked.exists() and len(copies()) == 2,
        lambda: f"parked {parked.count()}, copies {len(copies())}",
    )
    message = parked.get()
    assert message.attempts == 3 and "boom events are refused" in message.last_error
    assert message.event.type == "boom"
    # The handler is fixed (the running consumer takes it up); the parked event is
    # replayed and acknowledged.
    Subscription.objects.filter(pk=subscription.pk).update(
        handler="tests.subscriptions_support.copy_to_sink"
    )
    assert registry.replay_parked(subscription) == 1
    wait_until(lambda: len(copies()) == 3, lambda: f"copies {len(copies())}")
    assert sorted(copies()) == sorted(log_ids(stream.project))
    registry.stop_consumers(subscription)

"""Subscriptions: catch-up to live with no gap or duplicate, checkpoints with the handler's
writes, restarts, and persistent subscriptions' competing consumers, retries and parking."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from continust.core.errors import AlreadyExists, InvalidName, NotFound
from continust.jobs import leases
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Event, MessageStatus, Subscription, SubscriptionMessage
from continust.read.project_log import START, LogFilter, LogPosition, read_log
from continust.subscriptions import catchup, persistent, registry
from continust.subscriptions.registry import SubscriptionBusy
from tests.conftest import put, write_beside
from tests.subscriptions_support import copies, copy_to_sink, make_sink, refuse_boom


def log_ids(project):
    """Every event id of the project's log, in log order."""
    ids, after = [], START
    while True:
        page = read_log(project, after, limit=500)
        ids += [str(e.event.id) for e in page.entries]
        after = page.next
        if page.caught_up:
            return ids


def no_sleep(log):
    return log.append


@pytest.mark.django_db(transaction=True)
def test_catch_up_then_live_beside_concurrent_writers_has_no_gap_or_duplicate():
    make_sink()
    project = create_project("busy")
    streams = [create_stream(project, f"s{i}") for i in range(3)]
    for s in streams:
        put(s, *({"k": k} for k in range(5)))  # history to catch up on

    writers = [threading.Thread(target=write_beside, args=(s, 25, 4)) for s in streams]
    for w in writers:
        w.start()
    live = catchup.subscribe(
        project,
        "copier",
        copy_to_sink,
        stop=lambda: not any(w.is_alive() for w in writers),
        batch=7,
        wait_seconds=0.05,
    )
    for w in writers:
        w.join()
    # A second run resumes from the stored position and catches up with the rest.
    rest = catchup.subscribe(project, "copier", copy_to_sink, until_caught_up=True, batch=7)
    expected = log_ids(project)
    assert len(expected) == 3 * (5 + 25 + 7)
    assert copies() == expected
    assert live.handled + rest.handled == len(expected)
    subscription = Subscription.objects.get(name="copier")
    assert subscription.handled == len(expected)
    assert registry.describe(subscription).lag == 0


@pytest.mark.django_db(transaction=True)
def test_a_restart_resumes_from_the_stored_position():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2})
    first = catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    assert first.handled == 2
    put(stream, {"n": 3})
    second = catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    assert second.handled == 1
    assert copies() == log_ids(stream.project)
    stored = Subscription.objects.get(name="copier")
    assert registry.position_of(stored) == second.position > first.position
    assert stored.status == "idle" and stored.lease_expires_at is None


@pytest.mark.django_db(transaction=True)
def test_a_failing_handler_rolls_back_its_page_retries_with_backoff_then_stops():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1})
    append(stream, [NewEvent(type="boom", payload={"n": 2})])
    put(stream, {"n": 3})
    registry.create_subscription(stream.project, "copier")
    Subscription.objects.filter(name="copier").update(max_attempts=3, backoff_seconds=0.5)
    waits: list[float] = []
    with pytest.raises(catchup.SubscriptionFailed, match="3 failures in a row"):
        catchup.subscribe(
            stream.project, "copier", refuse_boom, until_caught_up=True, sleep=waits.append
        )
    assert waits == [0.5, 1.0]  # doubling
    # The page held the failing event: nothing of it committed, the position stayed.
    assert copies() == []
    stored = Subscription.objects.get(name="copier")
    assert registry.position_of(stored) == START
    assert "boom events are refused" in stored.last_error and stored.lease_expires_at is None
    # One event per page: the events before the failing one commit, each exactly once.
    with pytest.raises(catchup.SubscriptionFailed):
        catchup.subscribe(
            stream.project, "copier", refuse_boom, batch=1, until_caught_up=True, sleep=waits.append
        )
    assert len(copies()) == 1
    done = catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    assert done.handled == 2
    assert copies() == log_ids(stream.project)


@pytest.mark.django_db(transaction=True)
def test_one_subscriber_at_a_time():
    stream = create_stream(create_project("shop"), "orders")
    subscription = registry.create_subscription(stream.project, "copier")
    lease = catchup.claim(subscription, worker="first")
    with pytest.raises(SubscriptionBusy, match="held by first"):
        catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    with pytest.raises(SubscriptionBusy, match="stop it first"):
        registry.reset(subscription)
    assert leases.release(lease, status="idle")
    catchup.subscribe(stream.project, "copier", lambda e: None, until_caught_up=True)


@pytest.mark.django_db(transaction=True)
def test_a_filtered_subscription_sees_only_its_events():
    make_sink()
    project = create_project("shop")
    orders, stock = create_stream(project, "orders"), create_stream(project, "stock")
    append(orders, [NewEvent(type="order.placed", payload={"n": 1})])
    append(stock, [NewEvent(type="stock.added", payload={"n": 2})])
    append(orders, [NewEvent(type="order.paid", payload={"n": 3})])
    where = LogFilter(type_prefix="order.")
    catchup.subscribe(project, "orders", copy_to_sink, where=where, until_caught_up=True)
    wanted = Event.objects.filter(project=project, type__startswith="order.").order_by("position")
    assert copies() == [str(e.id) for e in wanted]
    with pytest.raises(InvalidName, match="another filter"):
        catchup.subscribe(project, "orders", copy_to_sink, where=LogFilter(stream="stock"))


@pytest.mark.django_db
def test_names_and_settings_are_checked():
    project = create_project("shop")
    for bad in ["", "a b", "x" * 65, "naïve", "a\x00"]:
        with pytest.raises(InvalidName):
            registry.create_subscription(project, bad)
    with pytest.raises(InvalidName):
        registry.create_subscription(project, "s", max_attempts=0)
    with pytest.raises(InvalidName):
        registry.create_subscription(project, "s", kind="other")
    with pytest.raises(NotFound):
        registry.create_subscription(project, "s", handler="tests.subscriptions_support.nothing")
    registry.create_subscription(project, "s")
    with pytest.raises(AlreadyExists):
        registry.create_subscription(project, "s")
    with pytest.raises(NotFound):
        registry.get_subscription(project, "t")


@pytest.mark.django_db(transaction=True)
def test_reset_says_what_it_resets_and_reads_again():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2})
    catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    subscription = Subscription.objects.get(name="copier")
    plan = registry.plan_reset(subscription)
    assert plan.question() == (
        f"Reset subscription 'copier' of shop from {registry.position_of(subscription)} "
        "to 0.0: it will read the 2 events after 0.0 again."
    )
    registry.reset(subscription)
    catchup.subscribe(stream.project, "copier", copy_to_sink, until_caught_up=True)
    assert len(copies()) == 4


# -- persistent subscriptions ------------------------------------------------------------


def persistent_subscription(project, **settings):
    return registry.create_subscription(
        project,
        "workers",
        kind="persistent",
        handler="tests.subscriptions_support.copy_to_sink",
        **settings,
    )


@pytest.mark.django_db(transaction=True)
def test_failed_deliveries_retry_with_exponential_backoff_then_park_and_replay():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1})
    append(stream, [NewEvent(type="boom", payload={"n": 2})])
    subscription = persistent_subscription(
        stream.project, max_attempts=3, backoff_seconds=2, backoff_max_seconds=3
    )
    assert persistent.fill(subscription) == 2
    t0 = timezone.now()
    done = persistent.deliver_due(subscription, refuse_boom, now=t0)
    assert (done.acknowledged, done.failed) == (1, 1)
    boom = SubscriptionMessage.objects.get()
    assert boom.status == MessageStatus.WAITING and boom.attempts == 1
    assert boom.due_at == t0 + timedelta(seconds=2)
    assert "boom events are refused" in boom.last_error
    # Not due yet: nobody gets it.
    assert (
        persistent.deliver_due(subscription, refuse_boom, now=t0 + timedelta(seconds=1)).delivered
        == 0
    )
    t1 = t0 + timedelta(seconds=2)
    assert persistent.deliver_due(subscription, refuse_boom, now=t1).failed == 1
    boom.refresh_from_db()
    assert boom.due_at == t1 + timedelta(seconds=3)  # 4 s, capped at 3
    t2 = t1 + timedelta(seconds=3)
    assert persistent.deliver_due(subscription, refuse_boom, now=t2).parked == 1
    boom.refresh_from_db()
    assert boom.status == MessageStatus.PARKED and boom.attempts == 3
    assert (
        persistent.deliver_due(subscription, refuse_boom, now=t2 + timedelta(days=1)).delivered == 0
    )
    (shown,) = registry.overview(stream.project)
    assert (shown.parked, shown.queued, shown.lag) == (1, 0, 0)
    assert "boom events are refused" in shown.subscription.last_error
    assert registry.parked_messages(subscription) == [boom]
    # Replayed, with attempts counted afresh; the fixed handler acknowledges it.
    assert registry.replay_parked(subscription) == 1
    assert persistent.deliver_due(subscription, copy_to_sink).acknowledged == 1
    assert not SubscriptionMessage.objects.exists()
    assert copies() == log_ids(stream.project)


@pytest.mark.django_db(transaction=True)
def test_a_consumer_whose_lease_lapsed_cannot_acknowledge():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1})
    subscription = persistent_subscription(stream.project, ack_timeout_seconds=5)
    persistent.fill(subscription)
    t0 = timezone.now()
    kind = persistent.message_kind(subscription)
    message = SubscriptionMessage.objects.get()
    stale = leases.claim(kind, message.pk, worker="slow", now=t0 - timedelta(seconds=10))
    # The slow consumer's lease lapsed: another one takes the message.
    quick = leases.claim(kind, message.pk, worker="quick")
    assert stale is not None and quick is not None and quick.fence > stale.fence
    outcome = persistent.Outcome()
    persistent._deliver(stale, message, copy_to_sink, outcome)
    assert outcome.lost == 1 and copies() == []  # its handler's writes rolled back
    persistent._deliver(quick, message, copy_to_sink, outcome)
    assert outcome.acknowledged == 1
    assert copies() == log_ids(stream.project)
    assert not SubscriptionMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_competing_consumers_never_handle_one_event_at_the_same_time():
    if connection.vendor != "postgresql":
        pytest.skip("consumers in threads beside one another need PostgreSQL")
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    subscription = persistent_subscription(stream.project)
    in_hand: set[int] = set()
    overlaps: list[int] = []
    handled: list[int] = []
    guard = threading.Lock()
    writing = threading.Event()

    def handler(entry):
        with guard:
            if entry.event.position in in_hand:
                overlaps.append(entry.event.position)
            in_hand.add(entry.event.position)
        time.sleep(0.001)  # widen the window two consumers would share
        copy_to_sink(entry)
        with guard:
            in_hand.discard(entry.event.position)
            handled.append(entry.event.position)

    def consumer(name):
        try:
            persistent.consume(
                Subscription.objects.get(pk=subscription.pk),
                handler,
                consumer=name,
                stop=lambda: (
                    not writing.is_set()
                    and not SubscriptionMessage.objects.exists()
                    and persistent.fill(subscription) == 0
                ),
                wait_seconds=0.05,
            )
        finally:
            connections.close_all()

    writing.set()
    consumers = [threading.Thread(target=consumer, args=(f"c{i}",)) for i in range(3)]
    for c in consumers:
        c.start()
    for k in range(12):
        put(stream, *({"k": k, "i": i} for i in range(10)))
    writing.clear()
    for c in consumers:
        c.join(120)
    assert overlaps == []
    assert sorted(copies()) == sorted(log_ids(stream.project))
    assert len(copies()) == 120
    assert not SubscriptionMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_fills_at_once_queue_each_event_once(monkeypatch):
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2})
    subscription = persistent_subscription(stream.project)
    real_read = persistent.read_log
    beside: list[int] = []

    def read_then_let_another_fill(*args, **kwargs):
        page = real_read(*args, **kwargs)
        if not beside:  # another consumer fills between this one's read and its write
            beside.append(0)
            beside[0] = persistent.fill(subscription)
        return page

    monkeypatch.setattr(persistent, "read_log", read_then_let_another_fill)
    assert persistent.fill(subscription) == 0  # its compare-and-set found the position moved
    assert beside == [2]
    assert SubscriptionMessage.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_reset_persistent_subscription_drops_its_queue_and_reads_again():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2})
    subscription = persistent_subscription(stream.project)
    persistent.fill(subscription)
    plan = registry.plan_reset(subscription, LogPosition(0, 0))
    assert "drop its 2 queued and parked messages" in plan.question()
    registry.reset(subscription)
    assert not SubscriptionMessage.objects.exists()
    done = persistent.consume(
        Subscription.objects.get(pk=subscription.pk), copy_to_sink, until_idle=True
    )
    assert done.acknowledged == 2
    assert copies() == log_ids(stream.project)


@pytest.mark.django_db(transaction=True)
def test_a_batch_claim_takes_only_messages_no_live_lease_holds():
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2}, {"n": 3})
    subscription = persistent_subscription(stream.project)
    persistent.fill(subscription)
    kind = persistent.message_kind(subscription)
    pks = list(SubscriptionMessage.objects.order_by("pk").values_list("pk", flat=True))
    first = leases.claim_many(kind, pks[:2], worker="a~1")
    second = leases.claim_many(kind, pks, worker="b~1")
    assert [lease.pk for lease in first] == pks[:2]
    assert [lease.pk for lease in second] == pks[2:]  # the held two are not taken again
    assert all(lease.fence == 1 for lease in first + second)
    assert leases.claim_many(kind, pks, worker="c~1") == []

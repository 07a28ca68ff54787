"""Webhooks on a real Celery worker: a receiver that fails three times then succeeds, and
exactly one delivery per event when the worker (and its dispatcher) is killed mid-way."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from continust.log.store import NewEvent, append
from continust.models import DeliveryStatus, WebhookDelivery
from continust.webhooks import registry
from tests.webhook_receiver import Receiver, standard_signature_ok
from tests.worker import poll

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT = 300  # generous: on a shared PostgreSQL, others' long transactions delay what is settled
# The worker may reach the receiver on 127.0.0.1; quick retries.
WORKER = {
    "CONTINUST_WEBHOOK_ALLOW_PRIVATE": "1",
    "CONTINUST_WEBHOOK_BACKOFF_SECONDS": "1",
    "CONTINUST_WEBHOOK_RESEND_SECONDS": "5",
    "CONTINUST_WEBHOOK_TIMEOUT_SECONDS": "2",
}


def wait_until(condition, describe, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(0.2)


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_three_failures_then_a_success_make_four_attempts(project, stream, start_worker):
    with Receiver(answers=[500, 502, 503, 200]) as receiver:
        webhook, secret = registry.register(project, receiver.url, ["set"], actor="alice")
        start_worker(**WORKER)
        append(stream, [NewEvent("set", {"price": 31})])
        wait_until(
            lambda: WebhookDelivery.objects.filter(webhook=webhook).exists(),
            lambda: "the dispatcher recorded no delivery",
        )
        found = poll(
            WebhookDelivery.objects.get(webhook=webhook),
            lambda d: d.status == DeliveryStatus.DELIVERED,
            timeout=TIMEOUT,
            describe=lambda d: f"delivery stuck: {d.status} {d.attempts} {d.last_error}",
        )
        got = receiver.received()
    assert [a.status_code for a in found.tries.all()] == [500, 502, 503, 200]
    assert [a.ok for a in found.tries.all()] == [False, False, False, True]
    assert len(got) == 4
    assert all(standard_signature_ok(secret, r) for r in got)
    assert got[-1].json["data"]["event"]["payload"] == {"price": 31}
    assert len({r.headers["webhook-id"] for r in got}) == 1


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_each_event_is_delivered_once_across_a_killed_worker(project, stream, start_worker):
    with Receiver() as receiver:
        webhook, _ = registry.register(project, receiver.url, ["set"], actor="alice")
        for n in range(0, 16, 4):
            append(stream, [NewEvent("set", {"n": m}) for m in range(n, n + 4)])
        first = start_worker(**WORKER)
        wait_until(
            lambda: len(receiver.received()) >= 3,
            lambda: f"only {len(receiver.received())} received",
        )
        first.kill()
        for n in range(16, 24, 4):
            append(stream, [NewEvent("set", {"n": m}) for m in range(n, n + 4)])
        start_worker(**WORKER)
        wait_until(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 24,
            lambda: f"{WebhookDelivery.objects.filter(status='delivered').count()} of 24 delivered",
        )
        got = receiver.received()
    rows = list(WebhookDelivery.objects.filter(webhook=webhook))
    assert len(rows) == 24
    assert sorted(d.event.payload["n"] for d in rows) == list(range(24))
    # At least once to the receiver (a worker killed mid-POST sends again), never missed.
    assert {r.json["data"]["event"]["payload"]["n"] for r in got} == set(range(24))

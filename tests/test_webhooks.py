"""Webhooks without a worker: registering (SSRF refusals), the dispatcher's exactly-once
step, one attempt's signature, retries with backoff, Retry-After, giving up, redelivery."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from continust.jobs import outbox
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import DeliveryStatus, OutboxMessage, Webhook, WebhookDelivery
from continust.webhooks import delivery, follow, registry, signing
from continust.webhooks.targets import InvalidWebhook, TargetRefused
from tests.webhook_receiver import Receiver, standard_signature_ok

pytestmark = pytest.mark.django_db

ALLOW_PRIVATE = override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
# An address outside every reserved range; no test sends anything to it.
PUBLIC = "93.184.215.14"


def fake_dns(monkeypatch, names):
    """Resolve the given names to the given addresses, in this process only."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = socket.AF_INET6
            return [
                (
                    family if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port or 0),
                )
                for a in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def send_all(webhook):
    """Make one attempt of every due delivery of the webhook; return their outcomes."""
    delivery.queue_due()  # as every worker's dispatcher does each round
    due = WebhookDelivery.objects.filter(
        webhook=webhook, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).order_by("id")
    return [delivery.run(d.pk, worker="test") for d in due.filter(queued=True)]


def make_due(webhook):
    """As if the retry's time had come (a second ago: SQLite's clock reads milliseconds)."""
    past = timezone.now() - timedelta(seconds=1)
    WebhookDelivery.objects.filter(webhook=webhook).update(next_attempt_at=past)


# -- SSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.8.9.10:8080/hook",
        "http://10.0.0.1/hook",
        "http://10.255.1.2/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://localhost/hook",
    ],
)
def test_non_public_targets_are_refused(project, url):
    with pytest.raises(TargetRefused):
        registry.register(project, url, actor="alice")
    assert not Webhook.objects.exists()


def test_a_hostname_resolving_to_a_private_address_is_refused(project, monkeypatch):
    fake_dns(monkeypatch, {"internal.example": ["10.0.0.7"], "mixed.example": [PUBLIC, "::1"]})
    with pytest.raises(TargetRefused, match="resolves to 10.0.0.7"):
        registry.register(project, "https://internal.example/hook")
    with pytest.raises(TargetRefused, match="resolves to ::1"):
        registry.register(project, "https://mixed.example/hook")
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://x/",
        "https://user:pw@example.com/",
        "https://",
        "http://exa mple.com/",
        "javascript:alert(1)",
        "",
    ],
)
def test_only_http_urls_are_targets(project, url):
    with ALLOW_PRIVATE, pytest.raises(InvalidWebhook):
        registry.register(project, url)


def test_public_targets_and_allowed_private_ones_are_registered(project):
    webhook, secret = registry.register(project, f"https://{PUBLIC}/hook", ["order."])
    assert webhook.event_types == ["order."] and signing.key_of(secret)
    with pytest.raises(TargetRefused):
        registry.register(project, "http://127.0.0.1:9/hook")
    with ALLOW_PRIVATE:
        registry.register(project, "http://127.0.0.1:9/hook")
    assert Webhook.objects.count() == 2


def test_an_address_rebound_to_loopback_is_refused_at_delivery(project, stream, monkeypatch):
    with Receiver() as receiver:
        fake_dns(monkeypatch, {"hooks.example": [PUBLIC]})
        webhook, _ = registry.register(
            project, f"http://hooks.example:{receiver.port}/hook", ["set"]
        )
        append(stream, [NewEvent("set", {"a": 1})])
        assert follow.follow(webhook.pk) == 1
        fake_dns(monkeypatch, {"hooks.example": ["127.0.0.1"]})
        assert send_all(webhook) == ["failed"]
        assert receiver.received() == []
    (attempt,) = WebhookDelivery.objects.get().tries.all()
    assert (
        attempt.status_code is None and "resolves to 127.0.0.1, a loopback address" in attempt.error
    )


# -- the dispatcher --------------------------------------------------------------------------


def test_the_dispatcher_records_each_matching_event_once(project, stream):
    with ALLOW_PRIVATE:
        webhook, _ = registry.register(project, "http://127.0.0.1:9/hook", ["order.", "pay"])
    other = create_stream(project, "orders")
    append(stream, [NewEvent("order.placed", {"n": 1}), NewEvent("set", {"x": 1})])
    append(other, [NewEvent("payment.taken", {"n": 2}), NewEvent("order.shipped", {"n": 3})])
    assert follow.follow_all() == 3
    assert follow.follow_all() == 0
    append(stream, [NewEvent("order.placed", {"n": 4})])
    assert follow.follow_all() == 1
    rows = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event.type for d in rows] == [
        "order.placed",
        "payment.taken",
        "order.shipped",
        "order.placed",
    ]
    assert [d.event.payload["n"] for d in rows] == [1, 2, 3, 4]
    assert len({d.event_id for d in rows}) == 4
    keys = set(OutboxMessage.objects.values_list("key", flat=True))
    assert {delivery.KIND.key(d) for d in rows} <= keys


def test_a_new_webhook_starts_after_the_log_as_it_is_unless_told(project, stream):
    append(stream, [NewEvent("old", {"n": 1})])
    with ALLOW_PRIVATE:
        now, _ = registry.register(project, "http://127.0.0.1:9/a", ["old", "new"])
        whole, _ = registry.register(project, "http://127.0.0.1:9/b", ["old", "new"], start="0")
    append(stream, [NewEvent("new", {"n": 2})])
    follow.follow_all()
    assert [d.event.type for d in now.deliveries.all()] == ["new"]
    assert sorted(d.event.type for d in whole.deliveries.all()) == ["new", "old"]


def test_a_dispatcher_that_dies_mid_step_leaves_nothing_and_the_next_one_does_it_all(
    project, stream, monkeypatch
):
    with ALLOW_PRIVATE:
        webhook, _ = registry.register(project, "http://127.0.0.1:9/hook", ["set"])
    append(stream, [NewEvent("set", {"n": n}) for n in range(5)])
    real = outbox.enqueue
    calls = []

    def dying(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise SystemExit("the dispatcher's process dies")
        return real(*args, **kwargs)

    monkeypatch.setattr(outbox, "enqueue", dying)
    with pytest.raises(SystemExit):
        follow.follow(webhook.pk)
    assert not WebhookDelivery.objects.exists()
    stored = Webhook.objects.get()
    assert (stored.after_tx, stored.after_position) == (webhook.after_tx, webhook.after_position)
    monkeypatch.setattr(outbox, "enqueue", real)
    assert follow.follow(webhook.pk) == 5
    assert follow.follow(webhook.pk) == 0
    assert sorted(d.event.payload["n"] for d in WebhookDelivery.objects.all()) == list(range(5))


def test_a_dispatcher_behind_another_records_nothing_twice(project, stream, monkeypatch):
    with ALLOW_PRIVATE:
        webhook, _ = registry.register(project, "http://127.0.0.1:9/hook", ["set"])
    append(stream, [NewEvent("set", {"n": n}) for n in range(3)])
    real = follow.read_log

    def racing(*args, **kwargs):
        page = real(*args, **kwargs)
        # Another dispatcher reads the same page and commits first.
        monkeypatch.setattr(follow, "read_log", real)
        assert follow.follow(webhook.pk) == 3
        return page

    monkeypatch.setattr(follow, "read_log", racing)
    assert follow.follow(webhook.pk) == 0
    assert WebhookDelivery.objects.count() == 3


def test_a_paused_webhook_waits_and_catches_up_when_resumed(project, stream):
    with ALLOW_PRIVATE:
        webhook, _ = registry.register(project, "http://127.0.0.1:9/hook", ["set"])
    registry.set_active(webhook, False, actor="alice")
    append(stream, [NewEvent("set", {"n": 1})])
    assert follow.follow_all() == 0
    registry.set_active(webhook, True, actor="alice")
    assert follow.follow_all() == 1


# -- attempts --------------------------------------------------------------------------------


@ALLOW_PRIVATE
def test_a_delivery_is_signed_so_the_receiver_can_verify_it(project, stream):
    with Receiver() as receiver:
        webhook, secret = registry.register(project, receiver.url, ["set"])
        (version,) = append(stream, [NewEvent("set", {"price": 31})]).versions
        follow.follow_all()
        assert send_all(webhook) == ["delivered"]
        (got,) = receiver.received()
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    assert standard_signature_ok(secret, got)
    signing.verify(secret, got.body, got.headers)
    with pytest.raises(signing.BadSignature):
        signing.verify(secret, got.body + b" ", got.headers)
    with pytest.raises(signing.BadSignature):
        signing.verify(signing.new_secret(), got.body, got.headers)
    with pytest.raises(signing.BadSignature):
        signing.verify(
            secret, got.body, got.headers, now=int(got.headers["webhook-timestamp"]) + 600
        )
    sent = WebhookDelivery.objects.get()
    assert got.json["type"] == "set"
    assert got.json["data"]["event"]["id"] == str(version.event.id)
    assert got.json["data"]["event"]["payload"] == {"price": 31}
    assert got.json["data"]["event"]["stream"] == "pricing"
    assert got.json["data"]["position"] == sent.position
    assert sent.status == DeliveryStatus.DELIVERED and sent.delivered_at is not None
    (attempt,) = sent.tries.all()
    assert (attempt.number, attempt.status_code, attempt.ok, attempt.error) == (1, 200, True, "")


@ALLOW_PRIVATE
@override_settings(
    CONTINUST_WEBHOOK_MAX_ATTEMPTS=3,
    CONTINUST_WEBHOOK_BACKOFF_SECONDS=10,
    CONTINUST_WEBHOOK_BACKOFF_MAX_SECONDS=3600,
)
def test_failures_are_retried_with_backoff_then_given_up(project, stream):
    with Receiver(answers=[500, 503, 502, 200]) as receiver:
        webhook, secret = registry.register(project, receiver.url, ["set"])
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        waits = []
        for _ in range(3):
            before = timezone.now()
            send_all(webhook)
            after = timezone.now()
            found = WebhookDelivery.objects.get()
            waits.append((found.status, before, found.next_attempt_at, after))
            assert send_all(webhook) == []  # not due yet
            make_due(webhook)
        assert len(receiver.received()) == 3
        ids = {r.headers["webhook-id"] for r in receiver.received()}
        assert len(ids) == 1  # the same message id on every attempt
        assert all(standard_signature_ok(secret, r) for r in receiver.received())
    (first, second, third) = waits
    assert first[0] == second[0] == DeliveryStatus.PENDING
    assert first[1] + timedelta(seconds=10) <= first[2] <= first[3] + timedelta(seconds=10)
    assert second[1] + timedelta(seconds=20) <= second[2] <= second[3] + timedelta(seconds=20)
    assert third[0] == DeliveryStatus.FAILED
    found = WebhookDelivery.objects.get()
    assert [(a.number, a.status_code, a.ok) for a in found.tries.all()] == [
        (1, 500, False),
        (2, 503, False),
        (3, 502, False),
    ]
    assert send_all(webhook) == []  # given up: nothing more


@ALLOW_PRIVATE
def test_a_network_error_is_recorded_and_retried(project, stream):
    with Receiver() as receiver:
        url = receiver.url
    # The receiver is closed: the connection is refused.
    webhook, _ = registry.register(project, url, ["set"])
    append(stream, [NewEvent("set", {"n": 1})])
    follow.follow_all()
    assert send_all(webhook) == ["pending"]
    (attempt,) = WebhookDelivery.objects.get().tries.all()
    assert attempt.status_code is None and attempt.error and not attempt.ok


@ALLOW_PRIVATE
@override_settings(CONTINUST_WEBHOOK_BACKOFF_SECONDS=1)
def test_429_waits_as_long_as_retry_after_says(project, stream):
    with Receiver(answers=[429], headers={"Retry-After": "120"}):
        webhook, _ = registry.register(project, Receiver().url, ["set"])
    with Receiver(answers=[429], headers={"Retry-After": "120"}) as receiver:
        Webhook.objects.filter(pk=webhook.pk).update(url=receiver.url)
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        before = timezone.now()
        assert send_all(webhook) == ["pending"]
    found = WebhookDelivery.objects.get()
    assert found.next_attempt_at >= before + timedelta(seconds=120)
    assert found.last_status_code == 429


@ALLOW_PRIVATE
@pytest.mark.parametrize("status", [404, 410, 302])
def test_other_answers_fail_at_once_and_redirects_are_not_followed(project, stream, status):
    with (
        Receiver() as elsewhere,
        Receiver(answers=[status], headers={"Location": elsewhere.url}) as receiver,
    ):
        webhook, _ = registry.register(project, receiver.url, ["set"])
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        assert send_all(webhook) == ["failed"]
        assert len(receiver.received()) == 1
        assert elsewhere.received() == []


@ALLOW_PRIVATE
def test_a_failed_delivery_is_redelivered_with_its_history_kept(project, stream):
    with Receiver(answers=[400, 200]) as receiver:
        webhook, _ = registry.register(project, receiver.url, ["set"])
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        assert send_all(webhook) == ["failed"]
        found = WebhookDelivery.objects.get()
        registry.redeliver(webhook, found.pk, actor="alice")
        with pytest.raises(InvalidWebhook, match="only a failed one"):
            registry.redeliver(webhook, found.pk, actor="alice")
        assert send_all(webhook) == ["delivered"]
    assert [a.status_code for a in found.tries.all()] == [400, 200]


def test_secrets_given_must_be_standard_ones(project):
    with ALLOW_PRIVATE:
        for bad in ("hunter2", "whsec_not base64", "whsec_" + "QUJD"):
            with pytest.raises(InvalidWebhook):
                registry.register(project, "http://127.0.0.1:9/", secret=bad)
        good = signing.new_secret()
        webhook, secret = registry.register(project, "http://127.0.0.1:9/", secret=good)
    assert secret == good == webhook.secret
    assert registry.rotate_secret(webhook, actor="alice") != good


@ALLOW_PRIVATE
def test_deliveries_held_while_paused_go_out_once_resumed(project, stream):
    with Receiver() as receiver:
        webhook, _ = registry.register(project, receiver.url, ["set"])
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        registry.set_active(webhook, False)
        (held,) = WebhookDelivery.objects.all()
        assert delivery.run(held.pk) == "skipped"  # its message came while paused
        assert send_all(webhook) == ["skipped"]
        registry.set_active(webhook, True)
        # Resuming queues a new message for it (the one it had was dropped while paused).
        before = OutboxMessage.objects.filter(key=delivery.KIND.key(held)).count()
        assert delivery.queue_due() == 1
        assert OutboxMessage.objects.filter(key=delivery.KIND.key(held)).count() == before + 1
        assert send_all(webhook) == ["delivered"]
        assert len(receiver.received()) == 1

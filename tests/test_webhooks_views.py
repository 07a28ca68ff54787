"""The Webhooks pages: admins only, SSRF refusals as form errors, the secret shown once,
deliveries with their attempts, and confirmations before rotate, remove and redeliver."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from continust.log.store import NewEvent, append
from continust.models import DeliveryStatus, Webhook, WebhookDelivery
from continust.webhooks import follow, registry
from continust.webhooks.delivery import run
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.215.14/hook?q=<b>x</b>"


def test_only_admins_see_webhooks(client, alice, bob, charlie, project):
    webhook, _ = registry.register(project, PUBLIC_URL)
    pages = [
        reverse("webhooks", args=["acme"]),
        reverse("webhook", args=["acme", webhook.pk]),
        reverse("webhook-remove", args=["acme", webhook.pk]),
        reverse("webhook-rotate", args=["acme", webhook.pk]),
    ]
    for page in pages:
        assert client.get(page).status_code == 302  # to the login page
    client.force_login(bob)  # a viewer
    for page in pages:
        assert client.get(page).status_code == 403
    assert (
        client.post(reverse("webhook-add", args=["acme"]), {"url": PUBLIC_URL}).status_code == 403
    )
    client.force_login(charlie)  # a stranger
    for page in pages:
        assert client.get(page).status_code == 404
    client.force_login(alice)
    for page in pages:
        assert client.get(page).status_code == 200
    assert "Webhooks</a>" in client.get(reverse("members", args=["acme"])).content.decode()
    client.force_login(bob)
    assert "Webhooks</a>" not in client.get(reverse("members", args=["acme"])).content.decode()
    assert Webhook.objects.count() == 1


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://10.1.1.1/", "http://169.254.169.254/", "ftp://x/"]
)
def test_a_refused_target_is_a_form_error_inside_the_layout(client, alice, project, url):
    client.force_login(alice)
    answer = client.post(reverse("webhook-add", args=["acme"]), {"url": url})
    assert answer.status_code == 400
    text = answer.content.decode()
    assert "Register a webhook" in text and 'class="error"' in text
    assert not Webhook.objects.exists()


def test_the_secret_is_shown_once_and_the_url_escaped(client, alice, project):
    client.force_login(alice)
    answer = client.post(
        reverse("webhook-add", args=["acme"]), {"url": PUBLIC_URL, "event_types": "order., pay"}
    )
    assert answer.status_code == 200
    webhook = Webhook.objects.get()
    assert webhook.event_types == ["order.", "pay"]
    assert webhook.secret in answer.content.decode()
    assert "<b>x</b>" not in answer.content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in answer.content.decode()
    for page in ("webhooks", "webhook"):
        args = ["acme"] if page == "webhooks" else ["acme", webhook.pk]
        assert webhook.secret not in client.get(reverse(page, args=args)).content.decode()


def test_rotate_and_remove_ask_first(client, alice, project):
    webhook, secret = registry.register(project, PUBLIC_URL)
    client.force_login(alice)
    rotate = reverse("webhook-rotate", args=["acme", webhook.pk])
    asked = client.get(rotate).content.decode()
    assert "Rotate the secret" in asked and "refuses them" in asked
    client.post(rotate)  # no confirmation: nothing happens
    assert Webhook.objects.get().secret == secret
    done = client.post(rotate, {"confirm": "yes"})
    new = Webhook.objects.get().secret
    assert new != secret and new in done.content.decode()
    remove = reverse("webhook-remove", args=["acme", webhook.pk])
    assert "deliveries and every attempt" in client.get(remove).content.decode()
    client.post(remove)
    assert Webhook.objects.exists()
    assert client.post(remove, {"confirm": "yes"}).status_code == 302
    assert not Webhook.objects.exists()


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_deliveries_show_their_attempts_and_a_failed_one_is_redelivered(
    client, alice, project, stream
):
    with Receiver(answers=[500, 422, 200]) as receiver:
        webhook, _ = registry.register(project, receiver.url, ["set"])
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        delivery = WebhookDelivery.objects.get()
        assert run(delivery.pk) == "pending"
        WebhookDelivery.objects.update(queued=True, next_attempt_at=delivery.created_at)
        assert run(delivery.pk) == "failed"
        client.force_login(alice)
        page = client.get(reverse("webhook", args=["acme", webhook.pk])).content.decode()
        assert "500" in page and "422" in page and "failed (given up)" in page
        redeliver = reverse("webhook-redeliver", args=["acme", webhook.pk, delivery.pk])
        assert "Redeliver…" in page and redeliver in page
        asked = client.get(redeliver).content.decode()
        assert "POSTed again" in asked and "its 2 attempts so far" in asked
        client.post(redeliver)
        assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
        assert client.post(redeliver, {"confirm": "yes"}).status_code == 302
        assert run(delivery.pk) == "delivered"
        again = client.get(redeliver).content.decode()
        assert "only a failed one is redelivered" in again
        filtered = client.get(reverse("webhook", args=["acme", webhook.pk]), {"status": "failed"})
        assert "No deliveries failed yet" in filtered.content.decode()
    active = reverse("webhook-active", args=["acme", webhook.pk])
    client.post(active, {"active": "no"})
    assert not Webhook.objects.get().active
    client.post(active, {"active": "yes"})
    assert Webhook.objects.get().active

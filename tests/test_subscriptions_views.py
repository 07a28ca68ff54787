"""The explorer's Subscriptions page: members see positions, lag, errors and parked events;
admins reset and replay through confirmations."""

from __future__ import annotations

import pytest
from django.urls import reverse

from continust.log.store import NewEvent, append
from continust.models import MessageStatus, Subscription, SubscriptionMessage
from continust.subscriptions import persistent, registry
from tests.conftest import put

pytestmark = pytest.mark.django_db


def refuse(entry):
    raise ValueError(f"<b>refused</b> {entry.event.type}")


@pytest.fixture
def parked(project, stream):
    put(stream, {"n": 1})
    append(stream, [NewEvent(type="boom", payload={"n": 2})])
    subscription = registry.create_subscription(
        project, "workers", kind="persistent", max_attempts=1
    )
    persistent.fill(subscription)
    persistent.deliver_due(subscription, refuse)
    return Subscription.objects.get(pk=subscription.pk)


def test_members_see_position_lag_and_parked_events_escaped(client, bob, project, parked):
    registry.create_subscription(project, "copier")
    client.force_login(bob)  # a viewer
    page = client.get(reverse("subscriptions", args=["acme"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "workers" in html and "copier" in html
    assert "&lt;b&gt;refused&lt;/b&gt; boom" in html and "<b>refused" not in html
    assert "Parked events of workers" in html
    assert "Reset…" not in html  # viewers see, admins act
    assert client.post(reverse("subscription-reset", args=["acme", "workers"])).status_code == 403


def test_an_admin_replays_parked_events_after_confirming(client, alice, parked):
    client.force_login(alice)
    url = reverse("subscription-replay", args=["acme", "workers"])
    asked = client.get(url)
    assert "Queue the 2 parked events of subscription" in asked.content.decode()
    assert SubscriptionMessage.objects.filter(status=MessageStatus.PARKED).count() == 2
    assert client.post(url).status_code == 200  # no confirmation: the question again
    assert SubscriptionMessage.objects.filter(status=MessageStatus.PARKED).count() == 2
    done = client.post(url, {"confirm": "yes"})
    assert done.status_code == 302
    assert not SubscriptionMessage.objects.filter(status=MessageStatus.PARKED).exists()


def test_an_admin_resets_after_confirming(client, alice, project, stream):
    put(stream, {"n": 1})
    subscription = registry.create_subscription(project, "copier")
    Subscription.objects.filter(pk=subscription.pk).update(position=10**6)
    client.force_login(alice)
    url = reverse("subscription-reset", args=["acme", "copier"])
    assert "it will read the 1 events after 0.0 again" in client.get(url).content.decode()
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert Subscription.objects.get(pk=subscription.pk).position == 0


def test_unknown_subscriptions_and_strangers_get_404(client, alice, charlie, project):
    client.force_login(alice)
    assert client.get(reverse("subscription-reset", args=["acme", "nope"])).status_code == 404
    client.force_login(charlie)
    assert client.get(reverse("subscriptions", args=["acme"])).status_code == 404

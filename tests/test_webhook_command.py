"""manage.py webhook: add (refusing non-public targets), list, pause, resume, rotate,
deliveries with their attempts, redeliver and remove."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from continust.log.store import NewEvent, append
from continust.models import Webhook, WebhookDelivery
from continust.webhooks import follow, signing
from continust.webhooks.delivery import run
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db


def webhook(*args):
    out = StringIO()
    call_command("webhook", "--project", "acme", *args, stdout=out)
    return out.getvalue()


def test_add_refuses_loopback_and_private_targets(project):
    for url in ("http://127.0.0.1:9/", "http://10.0.0.1/", "http://[::1]/", "http://localhost/"):
        with pytest.raises(CommandError, match="webhooks reach only public addresses"):
            webhook("add", url)
    with pytest.raises(CommandError, match="http:// or https://"):
        webhook("add", "ftp://93.184.215.14/")
    assert not Webhook.objects.exists()


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_the_whole_round(project, stream):
    with Receiver(answers=[410, 200]) as receiver:
        added = json.loads(webhook("add", receiver.url, "--type", "set", "--json"))
        assert signing.key_of(added["secret"])
        text = webhook("list")
        assert receiver.url in text and "active" in text
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        (delivery,) = WebhookDelivery.objects.all()
        assert run(delivery.pk) == "failed"
        shown = webhook("deliveries", str(added["id"]))
        assert "failed" in shown and "#1" in shown and "410" in shown
        assert (
            json.loads(webhook("deliveries", str(added["id"]), "--status", "delivered", "--json"))
            == []
        )
        assert "queued again" in webhook("redeliver", str(added["id"]), str(delivery.pk))
        assert run(delivery.pk) == "delivered"
    assert "paused" in webhook("pause", str(added["id"]))
    assert not Webhook.objects.get().active
    webhook("resume", str(added["id"]))
    assert Webhook.objects.get().active
    assert "new secret" in webhook("rotate", str(added["id"]))
    assert Webhook.objects.get().secret != added["secret"]
    with pytest.raises(CommandError, match=r"Remove webhook .* add --yes"):
        webhook("remove", str(added["id"]))  # no terminal, no --yes: asks, changes nothing
    assert Webhook.objects.exists()
    assert "with its 1 deliveries" in webhook("remove", str(added["id"]), "--yes")
    assert not Webhook.objects.exists()
    with pytest.raises(CommandError, match="no webhook"):
        webhook("pause", str(added["id"]))
    with pytest.raises(CommandError, match="webhook id"):
        webhook("pause", "x1")

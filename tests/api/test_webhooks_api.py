"""Webhooks over the API: admins only, SSRF refusals as 422, the secret shown once,
deliveries with their attempts, pause, rotate, redeliver and remove."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from api.models import Scope
from continust.log.projects import add_member, create_project
from continust.log.store import NewEvent, append
from continust.models import Role, Webhook, WebhookDelivery
from continust.webhooks import follow, signing
from continust.webhooks.delivery import run
from tests.api.conftest import Api, issue
from tests.webhook_receiver import Receiver, standard_signature_ok

pytestmark = pytest.mark.django_db

HOOKS = "/projects/acme/webhooks"
PUBLIC_URL = "https://93.184.215.14/hook"  # a public address; nothing is sent to it


def delete(api: Api, path: str):
    return api.client.delete(f"/api{path}", headers=api.headers())


def test_an_admin_registers_and_sees_the_secret_once(alice_api):
    created = alice_api.post(HOOKS, {"url": PUBLIC_URL, "event_types": ["order."]})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert signing.key_of(body["secret"])
    assert body["event_types"] == ["order."] and body["active"] is True
    listed = alice_api.get(HOOKS).json()["items"]
    assert [w["id"] for w in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in alice_api.get(f"{HOOKS}/{body['id']}").json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost:8000/hook",
    ],
)
def test_non_public_targets_are_a_422(alice_api, url):
    answer = alice_api.post(HOOKS, {"url": url})
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_webhook"
    assert not Webhook.objects.exists()


def test_other_schemes_are_refused_by_the_schema(alice_api):
    answer = alice_api.post(HOOKS, {"url": "ftp://93.184.215.14/"})
    assert answer.status_code == 400
    assert not Webhook.objects.exists()


def test_viewers_editors_and_strangers_cannot_see_or_touch_webhooks(alice_api, bob_api, project):
    webhook_id = alice_api.post(HOOKS, {"url": PUBLIC_URL}).json()["id"]
    eddie = User.objects.create_user("eddie")
    add_member(project, eddie, Role.EDITOR)
    charlie = User.objects.create_user("charlie")
    create_project("elsewhere", owner=charlie)
    read_only = Api(Client(), issue(User.objects.get(username="alice"), [project], Scope.READ))
    for api, want in (
        (bob_api, 403),
        (Api(Client(), issue(eddie, [project])), 403),
        (Api(Client(), issue(charlie, list(charlie.projects.all()))), 404),
    ):
        assert api.get(HOOKS).status_code == want
        assert api.get(f"{HOOKS}/{webhook_id}").status_code == want
        assert api.get(f"{HOOKS}/{webhook_id}/deliveries").status_code == want
        assert api.post(HOOKS, {"url": PUBLIC_URL}).status_code == want
        assert api.post(f"{HOOKS}/{webhook_id}/pause", {}).status_code == want
        assert api.post(f"{HOOKS}/{webhook_id}/secret", {}).status_code == want
        assert delete(api, f"{HOOKS}/{webhook_id}").status_code == want
    assert read_only.get(HOOKS).status_code == 200
    assert read_only.post(f"{HOOKS}/{webhook_id}/pause", {}).status_code == 403
    assert Webhook.objects.get().active


@override_settings(CONTINUST_WEBHOOK_ALLOW_PRIVATE=True)
def test_deliveries_their_attempts_and_a_redelivery(alice_api, stream):
    with Receiver(answers=[404, 200]) as receiver:
        created = alice_api.post(HOOKS, {"url": receiver.url, "event_types": ["set"]}).json()
        path = f"{HOOKS}/{created['id']}"
        append(stream, [NewEvent("set", {"n": 1})])
        follow.follow_all()
        (delivery,) = WebhookDelivery.objects.all()
        assert run(delivery.pk) == "failed"
        page = alice_api.get(f"{path}/deliveries").json()
        (item,) = page["items"]
        assert item["status"] == "failed" and item["event"]["type"] == "set"
        assert [(a["number"], a["status_code"], a["ok"]) for a in item["attempts"]] == [
            (1, 404, False)
        ]
        assert alice_api.get(f"{path}/deliveries", status="delivered").json()["items"] == []
        again = alice_api.post(f"{path}/deliveries/{delivery.pk}/redeliver", {})
        assert again.status_code == 202 and again.json()["status"] == "pending"
        refused = alice_api.post(f"{path}/deliveries/{delivery.pk}/redeliver", {})
        assert refused.status_code == 422
        assert run(delivery.pk) == "delivered"
        assert alice_api.get(path).json()["deliveries"]["delivered"] == 1
        rotated = alice_api.post(f"{path}/secret", {}).json()["secret"]
        assert rotated != created["secret"]
        append(stream, [NewEvent("set", {"n": 2})])
        follow.follow_all()
        newest = WebhookDelivery.objects.order_by("-id").first()
        assert run(newest.pk) == "delivered"
        assert standard_signature_ok(rotated, receiver.received()[-1])
        assert not standard_signature_ok(created["secret"], receiver.received()[-1])
    paused = alice_api.post(f"{path}/pause", {}).json()
    assert paused["active"] is False
    assert alice_api.post(f"{path}/resume", {}).json()["active"] is True
    assert delete(alice_api, path).status_code == 204
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    assert alice_api.get(path).status_code == 404


def test_bad_bodies_change_nothing(alice_api):
    for body in (
        {"url": PUBLIC_URL, "secret": "whsec_QUJD"},
        {"url": PUBLIC_URL, "event_types": ["   "]},
        {"url": PUBLIC_URL, "start": "later"},
    ):
        answer = alice_api.post(HOOKS, body)
        assert answer.status_code in (400, 422), (body, answer.json())
    assert alice_api.post(HOOKS, {"url": PUBLIC_URL, "extra": 1}).status_code == 400
    assert not Webhook.objects.exists()
    assert json.loads(alice_api.get(f"{HOOKS}/1").content)["code"] == "not_found"

"""Erasure over HTTP: encrypting a stream, reading it revealed, previewing and erasing a
data subject; roles and strangers."""

from __future__ import annotations

import json

import pytest

from api.models import Scope
from continust.audit.trail import AUDIT_STREAM
from continust.log.projects import create_stream
from continust.models import Event, SubjectKey
from tests.api.conftest import Api, issue

pytestmark = pytest.mark.django_db

CUSTOMERS = "/projects/acme/streams/customers"


def put_json(api: Api, path: str, body) -> object:
    return api.client.put(
        f"/api{path}", json.dumps(body), content_type="application/json", headers=api.headers()
    )


@pytest.fixture
def customers(project, alice_api):
    create_stream(project, "customers")
    response = put_json(alice_api, f"{CUSTOMERS}/personal", {"subject_member": "customer"})
    assert response.status_code == 200, response.content
    for payload in (
        {"customer": "c-1", "email": "ann@example.com"},
        {"customer": "c-2", "email": "bo@example.com"},
        {"customer": "c-1", "phone": "555-0101"},
    ):
        body = {"events": [{"type": "customer.updated", "payload": payload}]}
        assert alice_api.post(f"{CUSTOMERS}/events", body).status_code == 201


def test_an_admin_encrypts_a_stream_and_it_is_audited(customers, bob_api):
    assert bob_api.get(f"{CUSTOMERS}/personal").json() == {
        "stream": "customers",
        "subject_member": "customer",
    }
    record = Event.objects.get(stream__name=AUDIT_STREAM, type="stream.personal.set")
    assert record.actor == "alice"
    assert record.payload["after"] == {"subject": "customer"}


def test_readers_see_plain_values_and_the_rows_hold_none(customers, bob_api):
    raw = json.dumps(list(Event.objects.filter(stream__name="customers").values("payload")))
    assert "ann@example.com" not in raw and "555-0101" not in raw
    events = bob_api.get(f"{CUSTOMERS}/events").json()["items"]
    assert events[0]["payload"] == {"customer": "c-1", "email": "ann@example.com"}
    head = bob_api.get(f"{CUSTOMERS}/state", ref="main").json()["state"]
    assert head == {"customer": "c-1", "email": "bo@example.com", "phone": "555-0101"}


def test_erasure_redacts_every_read_and_reports_the_events(customers, alice_api, bob_api):
    preview = alice_api.get("/projects/acme/erasures/preview", subject="c-1").json()
    assert [e["seq"] for e in preview["events"]] == [1, 3] and preview["erased"] is False
    response = alice_api.post(
        "/projects/acme/erasures", {"subject": "c-1", "reason": "GDPR request 7"}
    )
    assert response.status_code == 201, response.content
    report = response.json()
    assert [e["seq"] for e in report["events"]] == [1, 3]
    assert report["erased_by"] == "alice" and report["reason"] == "GDPR request 7"
    audit = Event.objects.get(id=report["audit_event"])
    assert audit.type == "subject.erased" and audit.actor == "alice"
    events = bob_api.get(f"{CUSTOMERS}/events").json()["items"]
    assert [e["payload"] for e in events] == [
        {"customer": "c-1", "email": "[erased]"},
        {"customer": "c-2", "email": "bo@example.com"},
        {"customer": "c-1", "phone": "[erased]"},
    ]
    state = bob_api.get(f"{CUSTOMERS}/state", ref="main").json()["state"]
    assert state == {"customer": "c-1", "email": "bo@example.com", "phone": "[erased]"}
    versions = bob_api.get(f"{CUSTOMERS}/versions").json()["items"]
    first, last = versions[0]["id"], versions[-1]["id"]
    changes = bob_api.get(f"{CUSTOMERS}/diff/changes", a=first, b=last).json()["items"]
    assert {"op": "add", "path": "/phone", "new": "[erased]"} in changes
    assert bob_api.get("/projects/acme/verify").json()["ok"] is True


def test_erasing_twice_or_an_unknown_subject_changes_nothing(customers, alice_api):
    body = {"subject": "c-1", "reason": "asked"}
    assert alice_api.post("/projects/acme/erasures", body).status_code == 201
    records = Event.objects.filter(type="subject.erased").count()
    again = alice_api.post("/projects/acme/erasures", body)
    assert again.status_code == 409 and again.json()["code"] == "already_erased"
    unknown = alice_api.post("/projects/acme/erasures", {"subject": "zz", "reason": "asked"})
    assert unknown.status_code == 404
    assert Event.objects.filter(type="subject.erased").count() == records


def test_only_admins_erase_and_strangers_see_nothing(customers, bob_api, charlie, alice):
    body = {"subject": "c-1", "reason": "asked"}
    assert bob_api.post("/projects/acme/erasures", body).status_code == 403
    assert bob_api.get("/projects/acme/erasures/preview", subject="c-1").status_code == 403
    assert put_json(bob_api, f"{CUSTOMERS}/personal", {"subject_member": None}).status_code == 403
    from continust.log.projects import create_project

    create_project("elsewhere", owner=charlie)
    from continust.models import Project

    stranger = Api(bob_api.client, issue(charlie, [Project.objects.get(slug="elsewhere")]))
    assert stranger.post("/projects/acme/erasures", body).status_code == 404
    assert stranger.get(f"{CUSTOMERS}/personal").status_code == 404
    read_only = Api(bob_api.client, issue(alice, [Project.objects.get(slug="acme")], Scope.READ))
    assert read_only.post("/projects/acme/erasures", body).status_code == 403
    assert SubjectKey.objects.get(subject="c-1").key is not None


def test_a_bad_request_is_refused(customers, alice_api):
    for body in (
        {"subject": "c-1"},
        {"subject": "", "reason": "x"},
        {"subject": "c-1\n", "reason": "x"},
    ):
        assert alice_api.post("/projects/acme/erasures", body).status_code == 400
    assert SubjectKey.objects.get(subject="c-1").key is not None

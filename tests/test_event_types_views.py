"""The explorer's event types: the registry page, registering and evolving after a
confirmation, the setting, the version page showing the stored and the upcast payload,
and who may do what. alice is the admin, bob a viewer, charlie has no access."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from continust.audit import event_types
from continust.log.store import NewEvent, append
from continust.models import Event, EventType, Project, Replay, Stream

pytestmark = pytest.mark.django_db

ORDER = {"type": "object", "properties": {"amount": {"type": "integer"}}}
CENTS = {"type": "object", "properties": {"cents": {"type": "integer"}}}
MOVE = [{"op": "move", "from": "/amount", "path": "/cents"}]


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_registers_after_confirming(alice, project):
    client = client_of(alice)
    url = reverse("event-type-register", args=["acme"])
    asked = client.post(url, {"name": "order.placed", "schema": json.dumps(ORDER)})
    assert asked.status_code == 200
    assert (
        b"Register order.placed" in asked.content
        and b"checked against this schema" in asked.content
    )
    assert not EventType.objects.exists()
    done = client.post(url, {"name": "order.placed", "schema": json.dumps(ORDER), "confirm": "yes"})
    assert done.status_code == 302
    row = EventType.objects.get()
    assert (row.name, row.version, row.schema, row.actor) == ("order.placed", 1, ORDER, "alice")
    page = client.get(reverse("event-types", args=["acme"]))
    assert b"order.placed" in page.content


def test_a_bad_schema_is_shown_in_the_page_and_nothing_is_registered(alice, project):
    client = client_of(alice)
    answer = client.post(
        reverse("event-type-register", args=["acme"]),
        {"name": "t", "schema": '{"type": 5}', "confirm": "yes"},
    )
    assert answer.status_code == 400
    assert b"the schema is not valid" in answer.content
    assert b"<script>" not in answer.content
    broken = client.post(
        reverse("event-type-register", args=["acme"]),
        {"name": "t", "schema": "{<script>", "confirm": "yes"},
    )
    assert broken.status_code == 400 and b"&lt;script&gt;" in broken.content
    assert not EventType.objects.exists()


def test_what_would_be_refused_is_refused_before_the_confirmation_asks(alice, project, stream):
    row = event_types.register(project, "order.placed", ORDER, actor="alice")
    loaded = Stream.objects.select_related("project").get(pk=stream.pk)
    append(loaded, [NewEvent(type="order.placed", payload={"amount": 3})])
    client = client_of(alice)
    register = reverse("event-type-register", args=["acme"])
    for name, schema in [("order.placed", ORDER), ("t", {"type": "objekt"})]:
        asked = client.post(register, {"name": name, "schema": json.dumps(schema)})
        assert asked.status_code == 400 and b"This cannot be undone" not in asked.content
    evolve = reverse("event-type-evolve", args=["acme", row.pk])
    typo = [{"op": "move", "from": "/nope", "path": "/cents"}]
    asked = client.post(
        evolve, {"schema": json.dumps(CENTS), "patch": json.dumps(typo), "function": ""}
    )
    assert asked.status_code == 400 and b"This cannot be undone" not in asked.content
    assert b"pricing #1" in asked.content and b"nothing was registered" in asked.content
    assert EventType.objects.count() == 1


def test_an_admin_evolves_and_the_version_page_shows_both_payloads(alice, project, stream):
    row = event_types.register(project, "order.placed", ORDER, actor="alice")
    loaded = Stream.objects.select_related("project").get(pk=stream.pk)
    (version,) = append(loaded, [NewEvent(type="order.placed", payload={"amount": 3})]).versions
    client = client_of(alice)
    url = reverse("event-type-evolve", args=["acme", row.pk])
    fields = {"schema": json.dumps(CENTS), "patch": json.dumps(MOVE), "function": ""}
    asked = client.post(url, fields)
    assert asked.status_code == 200 and b"Evolve order.placed to v2" in asked.content
    assert EventType.objects.count() == 1
    assert client.post(url, {**fields, "confirm": "yes"}).status_code == 302
    assert EventType.objects.count() == 2
    detail = client.get(reverse("event-type", args=["acme", row.pk]))
    assert b"Version 2" in detail.content and b"/cents" in detail.content
    page = client.get(reverse("version", args=["acme", stream.pk, version.pk]))
    content = page.content.decode()
    assert "Payload as stored (v1)" in content and "read as order.placed v2" in content
    assert "cents" in content and "amount" in content
    assert Event.objects.get(pk=version.event.pk).payload == {"amount": 3}


def test_the_setting_refuses_after_confirming_and_allows_at_once(alice, project):
    client = client_of(alice)
    url = reverse("event-types-setting", args=["acme"])
    asked = client.post(url, {"unregistered_types": "refuse"})
    assert asked.status_code == 200 and b"Refuse unregistered types" in asked.content
    assert Project.objects.get(slug="acme").unregistered_types == "allow"
    client.post(url, {"unregistered_types": "refuse", "confirm": "yes"})
    assert Project.objects.get(slug="acme").unregistered_types == "refuse"
    client.post(url, {"unregistered_types": "allow"})
    assert Project.objects.get(slug="acme").unregistered_types == "allow"


def test_viewers_read_and_only_admins_change(bob, project):
    row = event_types.register(project, "order.placed", ORDER, actor="alice")
    client = client_of(bob)
    page = client.get(reverse("event-types", args=["acme"]))
    assert page.status_code == 200 and b"Register a type" not in page.content
    assert client.get(reverse("event-type", args=["acme", row.pk])).status_code == 200
    refused = client.post(
        reverse("event-type-register", args=["acme"]),
        {"name": "x", "schema": "{}", "confirm": "yes"},
    )
    assert refused.status_code == 403
    assert (
        client.post(
            reverse("event-types-setting", args=["acme"]),
            {"unregistered_types": "refuse", "confirm": "yes"},
        ).status_code
        == 403
    )
    assert EventType.objects.count() == 1


def test_strangers_get_404(charlie, project):
    row = event_types.register(project, "order.placed", ORDER, actor="alice")
    client = client_of(charlie)
    assert client.get(reverse("event-types", args=["acme"])).status_code == 404
    assert client.get(reverse("event-type", args=["acme", row.pk])).status_code == 404


def test_the_replay_form_starts_a_replay_with_upcasting(alice, project, stream):
    event_types.register(project, "order.placed", ORDER, actor="alice")
    loaded = Stream.objects.select_related("project").get(pk=stream.pk)
    append(loaded, [NewEvent(type="order.placed", payload={"amount": 3})])
    event_types.evolve(project, "order.placed", CENTS, patch=MOVE, actor="alice")
    answer = client_of(alice).post(
        reverse("replay-start", args=["acme", stream.pk]),
        {"start": "root", "end": "main", "upcast": "on"},
    )
    assert answer.status_code == 302, answer.content
    assert Replay.objects.get().upcast_to == {"order.placed": 2}

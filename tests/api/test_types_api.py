"""The event-type registry over HTTP: register, a bad payload refused with its path, evolve
with an upcaster, events read in the newest shape, the setting, and who may do what."""

from __future__ import annotations

import json

import pytest

from continust.log.projects import add_member
from continust.models import Event, Role
from tests.api.conftest import Api, event, events_path, issue

pytestmark = pytest.mark.django_db

ORDER = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "minimum": 0}},
    "required": ["amount"],
}
CENTS = {"type": "object", "properties": {"cents": {"type": "integer"}}, "required": ["cents"]}
MOVE = [{"op": "move", "from": "/amount", "path": "/cents"}]


def put_json(api: Api, path: str, body) -> object:
    return api.client.put(
        f"/api{path}", json.dumps(body), content_type="application/json", headers=api.headers()
    )


def register(api: Api, name="order.placed", schema=ORDER):
    return api.post("/projects/acme/types", {"name": name, "schema": schema})


def test_register_refuse_evolve_and_read_in_the_newest_shape(alice_api, stream):
    created = register(alice_api)
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1 and created.json()["schema"] == ORDER
    ok = alice_api.post(events_path(), {"events": [event({"amount": 3}, "order.placed")]})
    assert ok.status_code == 201
    bad = alice_api.post(
        events_path(),
        {"events": [event({"amount": 4}, "order.placed"), event({"amount": -1}, "order.placed")]},
    )
    assert bad.status_code == 422
    body = bad.json()
    assert (body["code"], body["path"], body["index"], body["version"]) == (
        "schema_violation",
        "/amount",
        1,
        1,
    )
    assert Event.objects.filter(stream=stream).count() == 1
    evolved = alice_api.post(
        "/projects/acme/types/order.placed/versions",
        {"schema": CENTS, "upcaster": {"patch": MOVE}},
    )
    assert evolved.status_code == 201, evolved.content
    assert evolved.json()["upcaster"] == {"patch": MOVE}
    listed = alice_api.get(events_path()).json()["items"]
    assert listed[0]["payload"] == {"cents": 3}
    assert listed[0]["stored_payload"] == {"amount": 3}
    assert listed[0]["upcast_from"] == 1
    stored = Event.objects.get(stream=stream)
    assert stored.payload == {"amount": 3} and listed[0]["hash"] == stored.hash
    one = alice_api.get(f"/projects/acme/events/{stored.id}").json()
    assert one["payload"] == {"cents": 3}
    log = alice_api.get("/projects/acme/events").json()["items"]
    assert [e["payload"] for e in log if e["type"] == "order.placed"] == [{"cents": 3}]
    history = alice_api.get("/projects/acme/types/order.placed/versions").json()
    assert [v["version"] for v in history["versions"]] == [1, 2]


def test_a_schema_the_metaschema_refuses_is_a_422(alice_api, project):
    answer = register(alice_api, schema={"type": 12})
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_schema")
    assert register(alice_api).status_code == 201
    again = register(alice_api)
    assert (again.status_code, again.json()["code"]) == (409, "type_exists")


def test_an_evolution_needs_exactly_one_upcaster_and_a_registered_type(alice_api, project):
    register(alice_api)
    path = "/projects/acme/types/order.placed/versions"
    assert alice_api.post(path, {"schema": CENTS, "upcaster": {}}).status_code == 400
    both = {"patch": MOVE, "function": "a.b"}
    assert alice_api.post(path, {"schema": CENTS, "upcaster": both}).status_code == 400
    unknown = alice_api.post(path, {"schema": CENTS, "upcaster": {"function": "a.b"}})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "invalid_event")
    missing = alice_api.post(
        "/projects/acme/types/nope/versions", {"schema": CENTS, "upcaster": {"patch": MOVE}}
    )
    assert missing.status_code == 404


def test_the_setting_refuses_unregistered_types(alice_api, stream):
    answer = put_json(alice_api, "/projects/acme/types-setting", {"unregistered_types": "refuse"})
    assert answer.status_code == 200 and answer.json()["unregistered_types"] == "refuse"
    refused = alice_api.post(events_path(), {"events": [event({}, "note")]})
    assert (refused.status_code, refused.json()["code"]) == (422, "schema_violation")
    assert alice_api.get("/projects/acme/types").json()["unregistered_types"] == "refuse"


def test_members_read_and_only_admins_change(alice, bob, project, stream):
    add_member(project, bob, Role.EDITOR)
    bob_api = Api(alice_api_client(), issue(bob, [project]))
    assert bob_api.get("/projects/acme/types").status_code == 200
    assert register(bob_api).status_code == 403
    assert (
        put_json(bob_api, "/projects/acme/types-setting", {"unregistered_types": "refuse"})
    ).status_code == 403


def test_strangers_see_nothing(charlie, project):
    stranger = Api(alice_api_client(), issue(charlie, []))
    assert stranger.get("/projects/acme/types").status_code == 404
    assert register(stranger).status_code == 404


def test_a_replay_can_fold_with_upcasting(alice_api, stream):
    register(alice_api)
    alice_api.post(events_path(), {"events": [event({"amount": 3}, "order.placed")]})
    alice_api.post(
        "/projects/acme/types/order.placed/versions",
        {"schema": CENTS, "upcaster": {"patch": MOVE}},
    )
    started = alice_api.post(
        "/projects/acme/streams/pricing/replays", {"to": "main", "upcast": True}
    )
    assert started.status_code == 202, started.content
    assert started.json()["upcast_to"] == {"order.placed": 2}


def alice_api_client():
    from django.test import Client

    return Client()

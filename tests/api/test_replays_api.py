"""Replays over HTTP: start, progress, cancel, promote and discard, with the explorer's roles."""

from __future__ import annotations

import pytest

from continust.log.projects import add_member
from continust.log.store import NewEvent, append
from continust.models import Branch, Replay, Role, Version
from continust.replays import replay as replays
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db

BASE = "/projects/acme/streams/pricing"


@pytest.fixture
def history(stream):
    for n in range(4):
        append(stream, [NewEvent("tier.removed" if n == 2 else "set", {f"k{n}": n})])
    return stream


def start(api: Api, **body):
    return api.post(BASE + "/replays", {"to": "main", **body})


def test_start_answers_202_and_progress_follows_the_run(alice_api: Api, bob_api: Api, history):
    answer = start(alice_api, skip_types=["tier.removed"])
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["status"] == "waiting" and body["shadow_branch"] == f"replay/{body['id']}"
    assert body["skip_types"] == ["tier.removed"] and body["total"] == 4
    replays.run(body["id"])
    done = bob_api.get(f"{BASE}/replays/{body['id']}").json()
    assert done["status"] == "done" and done["done"] == 4 and done["percent"] == 100
    listed = bob_api.get(BASE + "/replays").json()
    assert [r["id"] for r in listed["items"]] == [body["id"]]


def test_start_refuses_what_the_domain_refuses(alice_api: Api, bob_api: Api, history):
    assert start(bob_api).status_code == 403
    nothing = start(alice_api, **{"from": "main"})
    assert nothing.status_code == 422 and nothing.json()["code"] == "invalid_event"
    unknown = start(alice_api, reducer_version=99)
    assert unknown.status_code == 422
    assert start(alice_api, to="nowhere").status_code == 404
    assert not Replay.objects.exists()


def test_promote_moves_the_branch_and_refuses_twice(alice_api: Api, history):
    replay_id = start(alice_api, skip_types=["tier.removed"]).json()["id"]
    early = alice_api.post(f"{BASE}/replays/{replay_id}/promote")
    assert early.status_code == 422
    replays.run(replay_id)
    answer = alice_api.post(f"{BASE}/replays/{replay_id}/promote")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["branch"] == "main" and body["replay"]["promoted"] is True
    head = Version.objects.get(pk=body["head"])
    assert Branch.objects.get(stream=history, name="main").head_id == head.pk
    assert "k2" not in head.state.data
    again = alice_api.post(f"{BASE}/replays/{replay_id}/promote")
    assert again.status_code == 422


def test_cancel_a_waiting_replay(alice_api: Api, bob_api: Api, history):
    replay_id = start(alice_api).json()["id"]
    assert bob_api.post(f"{BASE}/replays/{replay_id}/cancel").status_code == 403
    answer = alice_api.post(f"{BASE}/replays/{replay_id}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert alice_api.post(f"{BASE}/replays/{replay_id}/cancel").status_code == 422


def test_discard_needs_the_admin_role(alice_api: Api, bob, project, history):
    add_member(project, bob, Role.EDITOR)
    from django.test import Client

    from tests.api.conftest import issue

    editor = Api(Client(), issue(bob, [project]))
    replay_id = start(alice_api).json()["id"]
    replays.run(replay_id)
    refused = editor.post(f"{BASE}/replays/{replay_id}/discard")
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    answer = alice_api.post(f"{BASE}/replays/{replay_id}/discard")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["replay"]["discarded"] is True
    assert answer.json()["shadow_branch"] == f"replay/{replay_id}"
    assert alice_api.post(f"{BASE}/replays/{replay_id}/discard").status_code == 422


def test_a_replay_of_another_stream_is_404(alice_api: Api, project, history):
    from continust.log.projects import create_stream

    other = create_stream(project, "other")
    append(other, [NewEvent("set", {"a": 1})])
    replay_id = alice_api.post("/projects/acme/streams/other/replays", {"to": "main"}).json()["id"]
    assert alice_api.get(f"{BASE}/replays/{replay_id}").status_code == 404
    assert alice_api.get(f"{BASE}/replays/999999").status_code == 404

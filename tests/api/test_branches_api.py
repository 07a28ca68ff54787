"""Fork and merge over HTTP: the same merge, conflicts and resolutions the CLI and the
explorer offer, with the exact errors of the API."""

from __future__ import annotations

import pytest

from continust.log.states import state_of
from continust.log.store import NewEvent, append, fork
from continust.models import Branch, Version

pytestmark = pytest.mark.django_db

BASE = "/projects/acme/streams/pricing"


@pytest.fixture
def diverged(stream):
    """main and sale both reprice `pro` from 29: one conflict; sale also adds a discount."""
    (root,) = append(stream, [NewEvent("set", {"pro": 29})]).versions
    fork(stream, "sale", root)
    append(stream, [NewEvent("set", {"pro": 31})])
    append(stream, [NewEvent("set", {"pro": 25, "discount": 20})], branch="sale")
    return root


def test_fork_makes_a_branch_at_a_version(alice_api, stream, diverged):
    answer = alice_api.post(BASE + "/forks", {"name": "trial", "at": f"v{diverged.pk}"})
    assert answer.status_code == 201, answer.json()
    assert answer.json()["name"] == "trial" and answer.json()["head"] == diverged.pk
    assert Branch.objects.get(stream=stream, name="trial").head_id == diverged.pk


def test_fork_refuses_a_taken_name_and_a_viewer(alice_api, bob_api, stream, diverged):
    taken = alice_api.post(BASE + "/forks", {"name": "sale", "at": "main"})
    assert taken.status_code == 409 and taken.json()["code"] == "already_exists"
    viewer = bob_api.post(BASE + "/forks", {"name": "x", "at": "main"})
    assert viewer.status_code == 403 and viewer.json()["code"] == "forbidden"
    missing = alice_api.post(BASE + "/forks", {"name": "x", "at": "nowhere"})
    assert missing.status_code == 404
    assert not Branch.objects.filter(stream=stream, name="x").exists()


def test_fork_refuses_a_name_a_revision_would_read_otherwise(alice_api, stream, diverged):
    id_like = alice_api.post(BASE + "/forks", {"name": "v3", "at": "main"})
    assert id_like.status_code == 422 and id_like.json()["code"] == "ambiguous_name"
    assert "spells a version id" in id_like.json()["detail"]
    walk = alice_api.post(BASE + "/forks", {"name": "x~1", "at": "main"})
    assert walk.status_code == 400 and walk.json()["code"] == "invalid_request"
    assert not Branch.objects.filter(stream=stream, name__in=["v3", "x~1"]).exists()


def test_the_preview_lists_the_conflicts_and_writes_nothing(alice_api, bob_api, stream, diverged):
    before = Version.objects.count()
    answer = bob_api.get(BASE + "/merge-preview", **{"from": "sale", "into": "main"})
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["conflicts"] == [
        {"path": "/pro", "base": 29, "ours": 31, "theirs": 25, "absent": []}
    ]
    assert body["merge_bases"] == [diverged.pk] and body["up_to_date"] is False
    assert {"op": "add", "path": "/discount", "new": 20} in body["changes"]
    assert Version.objects.count() == before


def test_a_merge_with_an_open_conflict_is_409_and_writes_nothing(alice_api, stream, diverged):
    before = Version.objects.count()
    answer = alice_api.post(BASE + "/merges", {"from": "sale", "into": "main"})
    assert answer.status_code == 409
    assert answer.json()["code"] == "merge_conflict"
    assert [c["path"] for c in answer.json()["conflicts"]] == ["/pro"]
    assert Version.objects.count() == before


def test_a_merge_with_resolutions_writes_the_merge(alice_api, stream, diverged):
    answer = alice_api.post(
        BASE + "/merges", {"from": "sale", "into": "main", "resolutions": {"/pro": 27}}
    )
    assert answer.status_code == 201, answer.json()
    version = Version.objects.get(pk=answer.json()["version"]["id"])
    assert state_of(version) == {"pro": 27, "discount": 20}
    assert len(answer.json()["version"]["parents"]) == 2
    assert Branch.objects.get(stream=stream, name="main").head_id == version.pk
    again = alice_api.post(BASE + "/merges", {"from": "sale", "into": "main"})
    assert again.status_code == 422 and again.json()["code"] == "nothing_to_merge"
    preview = alice_api.get(BASE + "/merge-preview", **{"from": "sale", "into": "main"}).json()
    assert preview["up_to_date"] is True and preview["conflicts"] == []


def test_a_merge_refuses_a_stale_head_and_a_stray_resolution(alice_api, stream, diverged):
    stale = alice_api.post(
        BASE + "/merges",
        {"from": "sale", "resolutions": {"/pro": 27}, "expected_head": diverged.pk},
    )
    assert stale.status_code == 409 and stale.json()["code"] == "stale_head"
    stray = alice_api.post(
        BASE + "/merges", {"from": "sale", "resolutions": {"/pro": 27, "/other": 1}}
    )
    assert stray.status_code == 422 and stray.json()["code"] == "invalid_event"
    unknown = alice_api.post(BASE + "/merges", {"from": "nope"})
    assert unknown.status_code == 404


def test_a_viewer_may_not_merge(bob_api, stream, diverged):
    answer = bob_api.post(BASE + "/merges", {"from": "sale", "resolutions": {"/pro": 27}})
    assert answer.status_code == 403

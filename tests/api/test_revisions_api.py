"""Revisions, tags, bisect and revert over HTTP: every version parameter reads main~3 and
v12^2, a bad revision is a 422 naming what did not resolve, never a 500.

    a - b - c ------ m    main
         \\         /
          d1 - d2 -       side
"""

from __future__ import annotations

import pytest

from continust.log.store import fork, merge
from continust.models import Event, Tag
from tests.conftest import put

pytestmark = pytest.mark.django_db

S = "/projects/acme/streams/pricing"


@pytest.fixture
def graph(stream):
    a, b, c = put(stream, {"n": 1, "ok": True}, {"n": 2, "ok": True}, {"n": 3, "ok": False})
    fork(stream, "side", b)
    d1, d2 = put(stream, {"side": 1}, {"side": 2}, branch="side")
    m = merge(stream, "side", "main")
    return {"a": a, "b": b, "c": c, "d1": d1, "d2": d2, "m": m}


def test_every_version_parameter_reads_revisions(alice_api, graph):
    assert alice_api.get(f"{S}/resolve", ref="main~1").json()["id"] == graph["c"].pk
    assert alice_api.get(f"{S}/resolve", ref=f"v{graph['m'].pk}^2").json()["id"] == graph["d2"].pk
    between = alice_api.get(f"{S}/lineage/between", a="main~2", b="main^2").json()
    assert between["items"] == [graph["d2"].pk, graph["d1"].pk]


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("main~9", "walks past the root"),
        ("main^3", "has 2 parents"),
        ("nope~1", "no version, branch, tag or key 'nope'"),
        ("main..side", "is a range"),
        ("main~x", "~ and ^ end a revision"),
    ],
)
def test_a_bad_revision_is_a_422_naming_it(alice_api, graph, ref, says):
    response = alice_api.get(f"{S}/resolve", ref=ref)
    assert response.status_code == 422
    assert response.json()["code"] == "bad_revision"
    assert says in response.json()["detail"]


def test_a_range_lists_what_b_reaches_and_a_does_not(alice_api, graph):
    response = alice_api.get(f"{S}/revisions/range", range="main~1..main", limit=2)
    body = response.json()
    assert body["count"] == 3 and body["items"] == [graph["m"].pk, graph["d2"].pk]
    rest = alice_api.get(f"{S}/revisions/range", range="main~1..main", after=body["next"]).json()
    assert rest["items"] == [graph["d1"].pk]
    bad = alice_api.get(f"{S}/revisions/range", range="main..nope")
    assert bad.status_code == 422 and "range 'main..nope'" in bad.json()["detail"]


def test_tags_are_made_listed_and_never_moved(alice_api, bob_api, graph):
    made = alice_api.post(f"{S}/tags", {"name": "rc1", "version": "main~1"})
    assert made.status_code == 201, made.json()
    assert made.json()["version"] == graph["c"].pk and made.json()["actor"] == "alice"
    assert Event.objects.get(id=made.json()["event"]).type == "tag.created"
    again = alice_api.post(f"{S}/tags", {"name": "rc1", "version": "main"})
    assert again.status_code == 409 and again.json()["code"] == "tag_exists"
    assert bob_api.post(f"{S}/tags", {"name": "rc2", "version": "main"}).status_code == 403
    assert alice_api.post(f"{S}/tags", {"name": "v12", "version": "main"}).status_code == 422
    assert alice_api.post(f"{S}/tags", {"name": "a~1", "version": "main"}).status_code == 400
    listed = alice_api.get(f"{S}/tags").json()
    assert [(t["name"], t["version"]) for t in listed["items"]] == [("rc1", graph["c"].pk)]
    assert alice_api.get(f"{S}/resolve", ref="rc1~1").json()["id"] == graph["b"].pk
    assert Tag.objects.count() == 1


def test_bisect_finds_the_first_bad_version(alice_api, graph):
    body = {"good": ["main~2"], "bad": "main", "pointer": "/ok", "expect": True}
    response = alice_api.post(f"{S}/bisect", body)
    assert response.status_code == 200, response.json()
    assert response.json()["first_bad"] == graph["c"].pk
    assert response.json()["states_read"] <= 4
    refused = alice_api.post(f"{S}/bisect", {**body, "good": ["main"], "bad": "main~2"})
    assert refused.status_code == 422 and refused.json()["code"] == "bisect_refused"
    skipped = alice_api.post(f"{S}/bisect", {**body, "skip": ["main~1"]}).json()
    assert skipped["first_bad"] is None
    assert skipped["could_be"] == [graph["c"].pk, graph["m"].pk]
    assert skipped["skipped"] == [{"version": graph["c"].pk, "why": "skipped as asked"}]
    wrong = alice_api.post(f"{S}/bisect", {**body, "skip": ["main~9"]})
    assert wrong.status_code == 422 and wrong.json()["code"] == "bad_revision"
    code = alice_api.post(f"{S}/bisect", {**body, "run": "state['ok']"})
    assert code.status_code == 400  # the API runs no Python


def test_revert_plans_and_appends(alice_api, graph):
    plan = alice_api.post(f"{S}/reverts", {"version": "main^2", "dry_run": True})
    assert plan.status_code == 200, plan.json()
    assert plan.json()["changes"] == [{"op": "replace", "path": "/side", "old": 2, "new": 1}]
    assert plan.json()["version"] is None and plan.json()["branch"] == "side"
    made = alice_api.post(f"{S}/reverts", {"version": "main^2", "branch": "main"})
    assert made.status_code == 201, made.json()
    event = Event.objects.get(versions__pk=made.json()["version"])
    assert event.causation_id == graph["d2"].event.id and event.type == "continust.revert"
    conflict = alice_api.post(f"{S}/reverts", {"version": f"v{graph['b'].pk}"})
    assert conflict.status_code == 422
    assert conflict.json()["code"] == "revert_conflict" and conflict.json()["paths"] == ["/n"]

"""Retention over HTTP: the policy, the dry run, compactions, and who may do what.

The graph most tests compact::

    v1 - v2 - v3 - v4 - v5 - v6 - v7 - v8   main
          \\
           v9                               side

An ephemeral policy keeping the newest 2 versions keeps v8 and v9 (the heads) and v2
(their merge base); it releases v1 alone and v3..v7 as one run.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from api.models import Scope
from continust.audit.trail import AUDIT_STREAM, audit_stream
from continust.log.policy import policy_of
from continust.log.projects import add_member, create_project
from continust.log.store import fork
from continust.models import Compaction, Event, Role, Stream
from continust.retention import compaction
from tests.api.conftest import Api, issue
from tests.conftest import put

pytestmark = pytest.mark.django_db

STREAM = "/projects/acme/streams/pricing"


def put_json(api: Api, path: str, body) -> object:
    headers = {"Authorization": f"Bearer {api.token}"} if api.token else {}
    return api.client.put(
        f"/api{path}", json.dumps(body), content_type="application/json", headers=headers
    )


def policy_events() -> int:
    return Event.objects.filter(stream__name=AUDIT_STREAM, type="retention.set").count()


@pytest.fixture
def graph(stream):
    versions = put(stream, *[{"n": i, "text": "x" * 2000 + str(i)} for i in range(1, 9)])
    fork(stream, "side", versions[1])
    (side,) = put(stream, {"side": True, "text": "y" * 2000}, branch="side")
    ids = {f"v{i}": v.pk for i, v in enumerate([*versions, side], start=1)}
    return ids


@pytest.fixture
def ephemeral(alice_api, graph):
    response = put_json(
        alice_api, f"{STREAM}/retention", {"kind": "ephemeral", "horizon_versions": 2}
    )
    assert response.status_code == 200, response.json()
    return graph


@pytest.fixture
def eddie_api(project):
    from django.contrib.auth.models import User

    eddie = User.objects.create_user("eddie", password="eddie-password-1")
    add_member(project, eddie, Role.EDITOR)
    return Api(Client(), issue(eddie, [project], Scope.WRITE))


@pytest.fixture
def charlie_api(charlie):
    elsewhere = create_project("elsewhere", owner=charlie)
    return Api(Client(), issue(charlie, [elsewhere], Scope.WRITE))


# -- the policy --------------------------------------------------------------------------


def test_a_member_reads_the_policy_and_the_footprint(bob_api, graph):
    response = bob_api.get(f"{STREAM}/retention")
    assert response.status_code == 200
    body = response.json()
    assert body["stream"] == "pricing"
    assert body["policy"]["kind"] == "eternal"
    assert body["description"] == "eternal: every event and state is kept"
    size = body["footprint"]
    assert size["total"] == size["events"] + size["versions"] + size["states"] > 1_000


def test_an_admin_sets_a_policy_and_the_audit_stream_records_it(alice_api, stream):
    response = put_json(
        alice_api, f"{STREAM}/retention", {"kind": "selective", "snapshot_every": 10}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["policy"] == {
        "kind": "selective",
        "snapshot_every": 10,
        "horizon_versions": None,
        "horizon_age": None,
    }
    assert response.json()["description"] == "selective: a snapshot every 10 versions"
    stream.refresh_from_db()
    assert policy_of(stream).snapshot_every == 10
    record = Event.objects.get(stream__name=AUDIT_STREAM, type="retention.set")
    assert record.actor == "alice"
    assert record.payload["after"] == {"kind": "selective", "snapshot_every": 10}
    assert alice_api.get(f"{STREAM}/retention").json()["policy"]["kind"] == "selective"


def test_an_ephemeral_horizon_takes_versions_and_an_age(alice_api, stream):
    response = put_json(
        alice_api,
        f"{STREAM}/retention",
        {"kind": "ephemeral", "horizon_versions": 500, "horizon_age": "90d"},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["policy"]["horizon_age"] == "90d"
    assert "newest 500 versions and versions younger than 90d" in response.json()["description"]
    seconds = put_json(alice_api, f"{STREAM}/retention", {"kind": "ephemeral", "horizon_age": 7200})
    assert seconds.json()["policy"] == {
        "kind": "ephemeral",
        "snapshot_every": None,
        "horizon_versions": None,
        "horizon_age": "2h",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "selective", "snapshot_every": 1}, "between 2 and"),
        ({"kind": "ephemeral"}, "needs a horizon"),
        ({"kind": "ephemeral", "horizon_versions": 0}, "between 1 and"),
        ({"kind": "ephemeral", "horizon_age": "3 fortnights"}, "not an age"),
        ({"kind": "ephemeral", "horizon_age": "99999999999999w"}, "at most 5200w"),
        ({"kind": "ephemeral", "horizon_age": 10**15}, "at most 5200w"),
        # schemathesis seed 3655437882: a huge negative age overflowed timedelta, a 500
        ({"kind": "ephemeral", "horizon_age": -1511034213330209050984448}, "must be positive"),
        ({"kind": "ephemeral", "horizon_age": 0}, "must be positive"),
        ({"kind": "eternal", "snapshot_every": 5}, "eternal policies take no snapshot_every"),
        ({"kind": "selective", "horizon_age": "1d"}, "selective policies take no horizon_age"),
    ],
)
def test_a_bad_policy_is_refused_and_changes_nothing(alice_api, stream, body, message):
    response = put_json(alice_api, f"{STREAM}/retention", body)
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "invalid_event"
    assert message in response.json()["detail"]
    stream.refresh_from_db()
    assert stream.retention == "eternal"
    assert policy_events() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "forever"},
        {"kind": "selective", "snapshot_every": True},
        {"kind": "selective", "snapshot_every": "10"},
        {"kind": "ephemeral", "horizon_versions": 2**40},
        {"kind": "eternal", "keep": "all"},
        {},
    ],
)
def test_a_body_off_the_schema_is_a_400(alice_api, stream, body):
    response = put_json(alice_api, f"{STREAM}/retention", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    stream.refresh_from_db()
    assert stream.retention == "eternal"


def test_the_audit_stream_keeps_everything(alice_api, project, stream):
    audit_stream(project)
    path = f"/projects/acme/streams/{AUDIT_STREAM}"
    response = put_json(
        alice_api, f"{path}/retention", {"kind": "ephemeral", "horizon_versions": 1}
    )
    assert response.status_code == 422
    assert "kept forever" in response.json()["detail"]
    assert alice_api.post(f"{path}/compactions").status_code == 422
    assert Compaction.objects.count() == 0


# -- who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bob_api", "eddie_api"])
def test_below_admin_one_reads_but_may_not_change_or_compact(request, graph, who):
    api = request.getfixturevalue(who)
    assert api.get(f"{STREAM}/retention").status_code == 200
    assert api.get(f"{STREAM}/retention/plan").status_code == 200
    assert api.get(f"{STREAM}/compactions").status_code == 200
    response = put_json(api, f"{STREAM}/retention", {"kind": "ephemeral", "horizon_versions": 1})
    assert response.status_code == 403
    assert "needs the admin role" in response.json()["detail"]
    assert api.post(f"{STREAM}/compactions").status_code == 403
    assert Stream.objects.get(name="pricing").retention == "eternal"
    assert Compaction.objects.count() == 0


def test_a_read_only_token_reads_but_may_not_write(alice, project, graph):
    api = Api(Client(), issue(alice, [project], Scope.READ))
    assert api.get(f"{STREAM}/retention").status_code == 200
    response = put_json(api, f"{STREAM}/retention", {"kind": "selective"})
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert api.post(f"{STREAM}/compactions").status_code == 403
    assert policy_events() == 0 and Compaction.objects.count() == 0


def test_an_outsider_finds_nothing(charlie_api, alice_api, graph):
    job = compaction.request(Stream.objects.get(name="pricing"), actor="alice")
    for path in ("retention", "retention/plan", "compactions", f"compactions/{job.pk}"):
        response = charlie_api.get(f"{STREAM}/{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert put_json(charlie_api, f"{STREAM}/retention", {"kind": "selective"}).status_code == 404
    assert charlie_api.post(f"{STREAM}/compactions").status_code == 404
    assert Compaction.objects.count() == 1


def test_no_token_is_a_401(anonymous_api, graph):
    assert anonymous_api.get(f"{STREAM}/retention").status_code == 401
    assert put_json(anonymous_api, f"{STREAM}/retention", {"kind": "selective"}).status_code == 401


# -- the dry run and compactions -----------------------------------------------------------


def test_the_dry_run_lists_the_runs_and_the_protected_versions(bob_api, ephemeral):
    v = ephemeral
    before = bob_api.get(f"{STREAM}/retention").json()["footprint"]
    response = bob_api.get(f"{STREAM}/retention/plan")
    assert response.status_code == 200
    plan = response.json()
    assert plan["policy"] == {
        "kind": "ephemeral",
        "snapshot_every": None,
        "horizon_versions": 2,
        "horizon_age": None,
    }
    assert plan["upto"] == v["v9"]
    # The newest 2 of each branch's own history stay: v7, v8 of main; v9 and v2 of side.
    assert plan["runs"] == [
        {"first": v["v1"], "last": v["v1"], "versions": 1},
        {"first": v["v3"], "last": v["v6"], "versions": 4},
    ]
    assert plan["runs_total"] == 2 and plan["versions_released"] == 5
    assert plan["protected"] == []
    assert plan["protected_total"] == 0
    assert plan["bytes_uncounted"] is None
    assert plan["bytes_released"] > 0
    assert bob_api.get(f"{STREAM}/retention").json()["footprint"] == before
    assert Compaction.objects.count() == 0


def test_a_compaction_releases_what_the_plan_said(alice_api, ephemeral):
    v = ephemeral
    response = alice_api.post(f"{STREAM}/compactions")
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["requested_by"], job["upto"]) == ("pending", "alice", v["v9"])
    assert job["policy"]["horizon_versions"] == 2
    again = alice_api.post(f"{STREAM}/compactions")
    assert again.status_code == 202 and again.json()["id"] == job["id"], "one at a time"

    compaction.run(job["id"])

    done = alice_api.get(f"{STREAM}/compactions/{job['id']}").json()
    assert done["status"] == "done"
    assert done["versions_released"] == 5 and done["runs"] == 2
    assert done["bytes_after"] < done["bytes_before"]
    record = alice_api.get(f"/projects/acme/events/{done['record']}").json()
    assert record["type"] == "retention.compacted"
    released = alice_api.get(f"{STREAM}/versions/{v['v3']}")
    assert released.status_code == 410
    assert released.json()["code"] == "state_released"
    assert alice_api.get(f"{STREAM}/versions/{v['v2']}").json()["state"]["n"] == 2
    assert alice_api.get(f"{STREAM}/versions/{v['v8']}").json()["state"]["n"] == 8
    footprint = alice_api.get(f"{STREAM}/retention").json()["footprint"]
    assert footprint["total"] == done["bytes_after"]


def test_released_events_read_with_a_null_payload_not_a_server_error(alice_api, ephemeral):
    compaction.run(alice_api.post(f"{STREAM}/compactions").json()["id"])
    released = Event.objects.filter(stream__name="pricing", payload=None)  # JSON null
    assert released.exists()
    for url in (f"{STREAM}/events?limit=100", "/projects/acme/events?limit=100"):
        page = alice_api.get(url)
        assert page.status_code == 200, page.content
        nulls = [e for e in page.json()["items"] if e["payload"] is None]
        assert {e["id"] for e in nulls} >= {str(e.id) for e in released}
    one = alice_api.get(f"/projects/acme/events/{released.first().id}")
    assert one.status_code == 200 and one.json()["payload"] is None


def test_compactions_are_listed_newest_first_a_page_at_a_time(alice_api, bob_api, ephemeral):
    stream = Stream.objects.get(name="pricing")
    made = []
    for _ in range(3):
        job = compaction.request(stream, actor="alice")
        compaction.run(job.pk)
        made.append(job.pk)
    first = bob_api.get(f"{STREAM}/compactions", limit=2).json()
    assert [c["id"] for c in first["items"]] == [made[2], made[1]]
    assert all(c["status"] == "done" for c in first["items"])
    rest = bob_api.get(f"{STREAM}/compactions", limit=2, after=first["next"]).json()
    assert [c["id"] for c in rest["items"]] == [made[0]]
    assert rest["next"] is None


def test_an_unknown_compaction_is_a_404(alice_api, project, graph):
    from continust.log.projects import create_stream

    other = create_stream(project, "other")
    job = compaction.request(other, actor="alice")
    response = alice_api.get(f"{STREAM}/compactions/{job.pk}")
    assert response.status_code == 404
    assert "no compaction" in response.json()["detail"]
    assert alice_api.get(f"{STREAM}/compactions/{job.pk + 1}").status_code == 404


def test_the_spec_documents_the_retention_operations(anonymous_api):
    spec = Client().get("/api/openapi.json").json()
    retention = spec["paths"]["/api/projects/{slug}/streams/{name}/retention"]
    assert set(retention) == {"get", "put"}
    assert {"403", "422"} <= set(retention["put"]["responses"])
    compactions = spec["paths"]["/api/projects/{slug}/streams/{name}/compactions"]
    assert "202" in compactions["post"]["responses"]
    assert "/api/projects/{slug}/streams/{name}/retention/plan" in spec["paths"]
    assert "/api/projects/{slug}/streams/{name}/compactions/{compaction_id}" in spec["paths"]

"""Reading over HTTP: pages that walk whole lists, versions and states, lineage, diffs, causation.

The graph most tests read::

    v1 - v2 - v3 ---------- v6   main (v6 merges feature into main)
           \\              /
            v4 - v5 ------      feature
"""

from __future__ import annotations

import uuid

import pytest

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append, fork, merge
from tests.api.conftest import event, events_path
from tests.conftest import put

pytestmark = pytest.mark.django_db


def walk(api, path, limit, **params):
    """Follow `next` cursors to the end; return every item and the number of pages."""
    items, pages, after = [], 0, None
    while True:
        query = {"limit": limit, **params, **({"after": after} if after else {})}
        response = api.get(path, **query)
        assert response.status_code == 200, response.json()
        body = response.json()
        items += body["items"]
        pages += 1
        after = body["next"]
        if after is None:
            return items, pages


@pytest.fixture
def graph(stream):
    v1, v2, v3 = put(stream, {"a": 1}, {"b": 2}, {"c": 3})
    fork(stream, "feature", v2)
    v4, v5 = put(stream, {"d": 4}, {"e": 5}, branch="feature")
    v6 = merge(stream, "feature", "main")
    return {"v1": v1.pk, "v2": v2.pk, "v3": v3.pk, "v4": v4.pk, "v5": v5.pk, "v6": v6.pk}


STREAM = "/projects/acme/streams/pricing"


def test_events_walk_completely_without_repeats(alice_api, stream):
    put(stream, *({"n": n} for n in range(23)))
    items, pages = walk(alice_api, events_path(), 5)
    assert [e["payload"]["n"] for e in items] == list(range(23))
    assert pages == 5


def test_a_page_stays_bounded(alice_api, stream):
    response = alice_api.get(events_path(), limit=1001)
    assert response.status_code == 400


def test_versions_walk_completely_without_repeats(alice_api, graph):
    items, _ = walk(alice_api, f"{STREAM}/versions", 4)
    assert [v["id"] for v in items] == sorted(graph.values())
    merged = next(v for v in items if v["id"] == graph["v6"])
    assert merged["parents"] == [graph["v3"], graph["v5"]]


def test_branches_and_streams_walk_by_name(alice_api, project, graph):
    for n in range(5):
        create_stream(project, f"s{n}")
    branches, _ = walk(alice_api, f"{STREAM}/branches", 1)
    assert [(b["name"], b["head"]) for b in branches] == [
        ("feature", graph["v5"]),
        ("main", graph["v6"]),
    ]
    streams, pages = walk(alice_api, "/projects/acme/streams", 2)
    assert [s["name"] for s in streams] == ["pricing", "s0", "s1", "s2", "s3", "s4"]
    assert pages == 3


def test_projects_lists_only_what_the_token_sees(alice_api, alice):
    from continust.log.projects import create_project

    create_project("unscoped", owner=alice)
    response = alice_api.get("/projects")
    assert response.json() == {
        "items": [{"slug": "acme", "name": "Acme", "role": "admin"}],
        "next": None,
    }


def test_a_version_comes_with_its_state(alice_api, graph):
    body = alice_api.get(f"{STREAM}/versions/{graph['v6']}").json()
    assert body["state"] == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert body["parents"] == [graph["v3"], graph["v5"]]
    assert body["generation"] == 4


def test_a_reference_resolves_to_its_version(alice_api, graph):
    assert alice_api.get(f"{STREAM}/resolve", ref="feature").json()["id"] == graph["v5"]
    assert alice_api.get(f"{STREAM}/resolve", ref=f"v{graph['v2']}").json()["id"] == graph["v2"]


def test_merge_bases_ancestors_between_and_path(alice_api, graph):
    bases = alice_api.get(f"{STREAM}/lineage/merge-bases", a=f"v{graph['v3']}", b="feature").json()
    assert bases["merge_bases"] == [graph["v2"]]
    ancestors = alice_api.get(f"{STREAM}/lineage/ancestors", of="main").json()
    assert ancestors["count"] == 6
    assert ancestors["items"] == sorted(graph.values(), reverse=True)
    between = alice_api.get(f"{STREAM}/lineage/between", a=str(graph["v3"]), b="main").json()
    assert between["count"] == 3 and set(between["items"]) == {
        graph["v4"],
        graph["v5"],
        graph["v6"],
    }
    path = alice_api.get(f"{STREAM}/lineage/path", a=str(graph["v3"]), b="feature").json()
    assert path["base"] == graph["v2"]
    assert path["from_a"] == [graph["v3"], graph["v2"]]
    assert path["from_b"] == [graph["v5"], graph["v4"], graph["v2"]]


def test_ancestor_and_between_pages_walk_completely(alice_api, stream):
    versions = [v.pk for v in put(stream, *({"n": n} for n in range(17)))]
    items, pages = walk(alice_api, f"{STREAM}/lineage/ancestors", 5, of="main")
    assert items == list(reversed(versions)) and pages == 4
    items, _ = walk(alice_api, f"{STREAM}/lineage/between", 4, a=str(versions[2]), b="main")
    assert items == list(reversed(versions[3:]))


def test_a_between_walk_is_pinned_when_the_branch_moves(alice_api, stream):
    versions = [v.pk for v in put(stream, *({"n": n} for n in range(6)))]
    first = alice_api.get(f"{STREAM}/lineage/between", a=str(versions[0]), b="main", limit=2).json()
    put(stream, {"n": 99})
    rest, _ = walk(
        alice_api, f"{STREAM}/lineage/between", 2, a=str(versions[0]), b="main", after=first["next"]
    )
    assert first["items"] + rest == list(reversed(versions[1:]))


def test_diffs_in_three_formats(alice_api, stream):
    a, b = put(
        stream,
        {"keep": 1, "drop": 2, "list": [1, 2]},
        {"keep": 1, "drop": None, "list": [1, 2, 3], "new": {"x": 1}},
    )
    query = {"a": str(a.pk), "b": str(b.pk)}
    changes = alice_api.get(f"{STREAM}/diff/changes", **query).json()
    assert changes["count"] == len(changes["items"]) == 3
    by_path = {c["path"]: c for c in changes["items"]}
    assert by_path["/drop"] == {"op": "remove", "path": "/drop", "old": 2}
    assert by_path["/new"] == {"op": "add", "path": "/new", "new": {"x": 1}}
    patch = alice_api.get(f"{STREAM}/diff/json-patch", **query).json()
    assert {"op": "add", "path": "/list/2", "value": 3} in patch["items"]
    merge_patch = alice_api.get(f"{STREAM}/diff/merge-patch", **query).json()
    assert merge_patch["merge_patch"] == {"drop": None, "list": [1, 2, 3], "new": {"x": 1}}


def test_a_json_patch_walked_page_by_page_turns_a_into_b(alice_api, stream):
    import jsonpatch

    a, b = put(stream, {f"k{n}": n for n in range(10)}, {f"k{n}": -n - 1 for n in range(10)})
    operations, pages = walk(alice_api, f"{STREAM}/diff/json-patch", 3, a=str(a.pk), b=str(b.pk))
    assert pages == 4
    assert jsonpatch.apply_patch(a.state.data, operations) == b.state.data


def test_causation_chain_both_ways(alice_api, project, stream):
    other = create_stream(project, "invoices")
    root, middle, leaf = (uuid.uuid4() for _ in range(3))
    append(stream, [NewEvent(type="priced", payload={"p": 1}, id=root)])
    append(other, [NewEvent(type="billed", payload={}, id=middle, causation=root)])
    append(stream, [NewEvent(type="noted", payload={}, id=leaf, causation=middle)])
    body = alice_api.get(f"/projects/acme/events/{leaf}/causation").json()
    assert [e["id"] for e in body["causes"]] == [str(middle), str(root)]
    down = alice_api.get(f"/projects/acme/events/{root}/causation").json()
    assert [(c["depth"], c["event"]["id"], c["cause"]) for c in down["consequences"]] == [
        (1, str(middle), str(root)),
        (2, str(leaf), str(middle)),
    ]
    assert down["truncated"] is False
    bounded = alice_api.get(f"/projects/acme/events/{root}/causation", limit=1).json()
    assert len(bounded["consequences"]) == 1 and bounded["truncated"] is True


def test_an_event_by_id(alice_api, stream):
    key = uuid.uuid4()
    append(stream, [NewEvent(type="t", payload={"a": 1}, id=key)])
    body = alice_api.get(f"/projects/acme/events/{key}").json()
    assert body["payload"] == {"a": 1} and body["stream"] == "pricing"


def test_creating_a_stream(alice_api, project):
    response = alice_api.post(
        "/projects/acme/streams", {"name": "accounts/alice", "reducer": "patch"}
    )
    assert response.status_code == 201
    assert response.json()["reducer"] == "patch" and response.json()["event_count"] == 0
    appended = alice_api.post(
        events_path("accounts/alice"),
        {"events": [event({"patch": [{"op": "add", "path": "/x", "value": 1}]})]},
    )
    assert appended.status_code == 201


def test_a_merge_patch_that_would_drop_a_null_is_422_naming_the_paths(alice_api, project):
    create_stream(project, "doc", reducer="replace")
    alice_api.post("/projects/acme/streams/doc/events", {"events": [event({"a": 1, "b": 2})]})
    alice_api.post("/projects/acme/streams/doc/events", {"events": [event({"a": None, "b": 2})]})
    versions = alice_api.get("/projects/acme/streams/doc/versions").json()["items"]
    first, last = sorted(v["id"] for v in versions)
    query = {"a": str(first), "b": str(last)}
    refused = alice_api.get("/projects/acme/streams/doc/diff/merge-patch", **query)
    assert refused.status_code == 422
    assert refused.json()["code"] == "null_not_expressible"
    assert refused.json()["paths"] == ["/a"]
    patch = alice_api.get("/projects/acme/streams/doc/diff/json-patch", **query).json()
    assert {"op": "replace", "path": "/a", "value": None} in patch["items"]

"""One read of a version: the facts, a fixed number of queries, the same in the
explorer's panel and the API."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from api.models import ApiToken, Scope
from continust.core.errors import NotFound
from continust.graph.causation import causes, consequence_count
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.read.versions import read_version
from tests.conftest import put


def chained(stream, count):
    """Append ``count`` events, each caused by the one before; return the versions."""
    versions = [append(stream, [NewEvent(type="step", payload={"n": 0})]).versions[0]]
    for n in range(1, count):
        cause = versions[-1].event.id
        new = NewEvent(type="step", payload={"n": n}, causation=cause)
        versions.append(append(stream, [new]).versions[0])
    return versions


def test_it_reads_parents_children_heads_causes_and_hashes(stream):
    v1, v2 = put(stream, {"a": 1}, {"b": 2})
    fork(stream, "feature", v2)
    (v3,) = put(stream, {"c": 3})
    (v4,) = put(stream, {"d": 4}, branch="feature")
    v5 = merge(stream, "feature", "main")
    (v6,) = append(stream, [NewEvent(type="because", payload={}, causation=v5.event.id)]).versions

    read = read_version(stream, v2.pk)
    assert read.parents == (v1.pk,)
    assert read.children == (v3.pk, v4.pk)
    assert read.heads == ()
    assert read.state == {"a": 1, "b": 2}
    assert read.seq == v2.event.seq
    assert (read.event_hash, read.digest, read.state_hash) == (
        v2.event.hash,
        v2.digest,
        v2.state_id,
    )
    merged = read_version(stream, v5)
    assert merged.parents == (v3.pk, v4.pk)
    assert merged.children == (v6.pk,)
    assert merged.consequence_count == 1 and merged.cause_count == 0
    last = read_version(stream, v6.pk)
    assert last.heads == ("main",)
    assert [event.pk for event, _ in last.causes] == [v5.event.pk]
    assert [made.pk for _, made in last.causes] == [v5.pk]
    assert read_version(stream, v4.pk).heads == ("feature",)
    brief = read_version(stream, v6.pk, brief=True)
    assert brief.state is None and brief.causes == () and brief.cause_count == 1


def test_a_version_of_another_stream_is_not_found(project, stream):
    other = create_stream(project, "other")
    (theirs,) = put(other, {"x": 1})
    with pytest.raises(NotFound):
        read_version(stream, theirs.pk)
    with pytest.raises(NotFound):
        read_version(stream, theirs)


def queries_to_read(stream, version_id):
    with CaptureQueriesContext(connection) as captured:
        read_version(stream, version_id)
    return len(captured)


def test_the_number_of_queries_does_not_grow_with_the_history(project):
    short = chained(create_stream(project, "short"), 10)
    long = chained(create_stream(project, "long"), 200)
    # The head (a long cause chain) and a version in the middle (children, consequences).
    assert queries_to_read(short[0].stream, short[-1].pk) == queries_to_read(
        long[0].stream, long[-1].pk
    )
    assert queries_to_read(short[0].stream, short[5].pk) == queries_to_read(
        long[0].stream, long[100].pk
    )
    assert queries_to_read(long[0].stream, long[-1].pk) <= 11


def test_causes_are_walked_in_one_query(stream):
    versions = chained(stream, 30)
    last = versions[-1].event
    with CaptureQueriesContext(connection) as captured:
        chain = causes(last)
    assert len(captured) == 2  # the walk, then the events
    assert [e.pk for e in chain] == [v.event.pk for v in reversed(versions[:-1])]
    assert [e.pk for e in causes(last, limit=3)] == [v.event.pk for v in versions[-2:-5:-1]]
    assert causes(versions[0].event) == []
    assert chain[0].stream.name == stream.name


def test_consequences_are_counted_up_to_the_limit(stream):
    versions = chained(stream, 12)
    first = versions[0].event
    assert consequence_count(first) == 11
    assert consequence_count(first, limit=5) == 5
    assert consequence_count(versions[-1].event) == 0


def test_the_explorer_and_the_api_show_the_same_facts(alice, project, stream):
    v1, _ = put(stream, {"a": 1}, {"b": 2})
    fork(stream, "feature", v1)
    put(stream, {"c": 3}, branch="feature")
    (later,) = append(stream, [NewEvent(type="later", payload={}, causation=v1.event.id)]).versions
    read = read_version(stream, v1.pk)

    token = ApiToken.issue(alice, "ci", [project], Scope.READ)[1]
    body = (
        Client()
        .get(
            f"/api/projects/acme/streams/pricing/versions/{v1.pk}",
            headers={"Authorization": f"Bearer {token}"},
        )
        .json()
    )
    assert body["parents"] == list(read.parents) == []
    assert body["children"] == list(read.children) and len(read.children) == 2
    assert body["heads"] == list(read.heads) == []
    assert body["consequence_count"] == read.consequence_count == 1
    assert body["cause_count"] == 0 and body["seq"] == read.seq
    assert body["event_hash"] == read.event_hash and body["digest"] == read.digest
    assert body["state"] == {"a": 1}

    client = Client()
    client.force_login(alice)
    panel = client.get(reverse("version", args=["acme", stream.pk, v1.pk])).content.decode()
    for child in read.children:
        assert f">v{child}</a>" in panel
    assert "1 event</a>" in panel
    assert read.digest in panel and read.event_hash in panel
    head = client.get(reverse("version", args=["acme", stream.pk, later.pk])).content.decode()
    assert "head of main" in head
    assert read_version(stream, later.pk).heads == ("main",)

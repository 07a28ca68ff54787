"""The live change feed (server-sent events): resume without a gap, heartbeats, the cap on
open feeds, membership, and a slow client dropped."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from django.test import Client

from api.models import Scope
from continust.audit import event_types
from continust.log.projects import add_member, create_project, create_stream
from continust.models import OpenFeed, Role
from continust.read.feed import Feed, FeedLimits, open_feed
from continust.read.project_log import START, LogFilter
from tests.api.conftest import Api, issue
from tests.conftest import put

# A safety net so a broken feed fails the test instead of hanging it, never a measurement.
SOCKET_TIMEOUT = 60


class Stream:
    """A feed read over a real HTTP connection, message by message."""

    def __init__(self, base: str, path: str, token: str, **headers: str) -> None:
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=SOCKET_TIMEOUT
        )
        self.connection.request(
            "GET", f"/api{path}", headers={"Authorization": f"Bearer {token}", **headers}
        )
        self.response = self.connection.getresponse()

    def message(self) -> dict[str, str]:
        """The next message or comment, as its fields (a comment under ``comment``)."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            assert line, "the feed ended"
            line = line.rstrip("\n")
            if line == "":
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.lstrip(" ")

    def events(self, count: int) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        while len(found) < count:
            message = self.message()
            if "data" in message:
                found.append(message)
        return found

    def close(self) -> None:
        self.connection.close()


def _payload(message: dict[str, str]) -> dict:
    return json.loads(message["data"])["payload"]


@pytest.mark.django_db(transaction=True)
def test_a_feed_resumes_from_last_event_id_without_gap_or_repeat(
    live_server, alice, project, stream, server_sessions_closed, settings
):
    settings.CONTINUST_FEED_HEARTBEAT_SECONDS = 1
    token = issue(alice, [project], Scope.READ)
    put(stream, {"n": 1}, {"n": 2}, {"n": 3})
    feed = Stream(live_server.url, "/projects/acme/events/feed?after=0", token)
    assert feed.response.status == 200
    assert feed.response.getheader("Content-Type") == "text/event-stream"
    assert feed.message() == {"retry": "1000"}
    first = feed.events(2)
    assert [_payload(m) for m in first] == [{"n": 1}, {"n": 2}]
    assert all(json.loads(m["data"])["log_position"] == m["id"] for m in first)
    feed.close()
    put(stream, {"n": 4})
    other = create_stream(project, "other")
    put(other, {"n": 5})
    # EventSource sends the id of the last message it received; ?after= is then ignored.
    again = Stream(
        live_server.url,
        "/projects/acme/events/feed?after=0",
        token,
        **{"Last-Event-ID": first[1]["id"]},
    )
    rest = again.events(3)
    assert [_payload(m) for m in rest] == [{"n": 3}, {"n": 4}, {"n": 5}]
    # Live: an event appended while the feed waits arrives too.
    put(other, {"n": 6})
    assert [_payload(m) for m in again.events(1)] == [{"n": 6}]
    again.close()


@pytest.mark.django_db(transaction=True)
def test_a_quiet_feed_sends_heartbeats_that_move_its_id_on(
    live_server, alice, project, stream, server_sessions_closed, settings
):
    settings.CONTINUST_FEED_HEARTBEAT_SECONDS = 1
    token = issue(alice, [project], Scope.READ)
    put(stream, {"n": 1})
    feed = Stream(live_server.url, "/projects/acme/events/feed?type=nothing.", token)
    assert feed.message() == {"retry": "1000"}
    beat = feed.message()
    assert beat["comment"] == "heartbeat" and "data" not in beat
    assert beat["id"] != "0"  # past the event the filter left out
    feed.close()


@pytest.mark.django_db
def test_open_feeds_are_capped_per_token(alice, project, stream, settings):
    settings.CONTINUST_FEED_MAX_OPEN = 2
    settings.CONTINUST_FEED_SECONDS = 0
    token = issue(alice, [project], Scope.READ)
    api = Api(Client(), token)
    held = [api.get("/projects/acme/events/feed") for _ in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    refused = api.get("/projects/acme/events/feed")
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_feeds"
    assert "CONTINUST_FEED_MAX_OPEN" in refused.json()["detail"]
    # Another token of the same user has its own count.
    assert (
        Api(Client(), issue(alice, [project], Scope.READ))
        .get("/projects/acme/events/feed")
        .status_code
        == 200
    )
    b"".join(held[0].streaming_content)  # a zero time limit: it catches up, then ends
    again = api.get("/projects/acme/events/feed")
    assert again.status_code == 200
    body = b"".join(again.streaming_content).decode()
    assert body.startswith("retry: 1000\n\n")  # a zero time limit: catch up, then end
    assert OpenFeed.objects.count() == 2  # the finished one gave its place back


@pytest.mark.django_db
def test_a_feed_is_only_for_members_and_bad_input_is_exact(charlie, alice, project, stream):
    elsewhere = create_project("elsewhere", "Elsewhere")
    add_member(elsewhere, charlie, Role.ADMIN)
    stranger = Api(Client(), issue(charlie, [elsewhere], Scope.READ))
    assert stranger.get("/projects/acme/events/feed").status_code == 404
    alice_api = Api(Client(), issue(alice, [project], Scope.READ))
    bad = alice_api.client.get(
        "/api/projects/acme/events/feed",
        headers={**alice_api.headers(), "Last-Event-ID": "12"},
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_name"
    assert alice_api.get("/projects/acme/events/feed", stream="nope").status_code == 404
    assert OpenFeed.objects.count() == 0  # refused before a place was taken


@pytest.mark.django_db
def test_a_client_that_stops_reading_is_dropped(project, stream):
    put(stream, {"n": 1}, {"n": 2})
    now = [0.0]
    limits = FeedLimits(seconds=300, heartbeat=15, slow=10)
    lease = open_feed("token:test", limits)
    feed = Feed(project, START, LogFilter(), limits, lease, clock=lambda: now[0])
    assert next(feed).startswith("retry:")
    assert '"n":1' in next(feed)
    now[0] += 11  # the server's write of that message blocked for 11 seconds
    with pytest.raises(StopIteration):
        next(feed)
    assert feed.dropped and OpenFeed.objects.count() == 0


def test_a_feed_sends_events_in_their_type_s_newest_shape(project, stream):
    """The feed reads as every other surface does: upcast, with the stored payload beside."""
    put(stream, {"n": 1})
    event_types.register(project, "set", {"type": "object"}, actor="alice")
    event_types.evolve(
        project,
        "set",
        {"type": "object"},
        patch=[{"op": "add", "path": "/upcast", "value": True}],
        actor="alice",
    )
    project.refresh_from_db()
    limits = FeedLimits(seconds=300, heartbeat=15, slow=10)
    feed = Feed(project, START, LogFilter(), limits, open_feed("token:test", limits))
    assert next(feed).startswith("retry:")
    record = json.loads(next(feed).split("data: ", 1)[1])
    assert record["payload"] == {"n": 1, "upcast": True}
    assert record["stored_payload"] == {"n": 1} and record["upcast_from"] == 1
    feed.close()

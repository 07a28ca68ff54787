"""The explorer's All events page, its live feed, and a stream's time slider."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import OpenFeed
from tests.conftest import put

pytestmark = pytest.mark.django_db

XSS = '<script>alert(1)</script>"><svg onload=alert(2)>'


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_all_events_lists_every_stream_in_log_order_and_pages(alice, project, stream, monkeypatch):
    monkeypatch.setattr("explorer.log.PAGE", 2)
    other = create_stream(project, "other")
    put(stream, {"a": 1})
    append(other, [NewEvent("stock.add", {"s": 1}, actor="ann")])
    put(stream, {"a": 2})
    client = as_user(alice)
    url = reverse("project-log", args=["acme"])
    first = client.get(url)
    assert first.status_code == 200
    html = first.content.decode()
    assert html.count("<tr>") == 3  # the header and two events: a full page
    assert html.index(">pricing<") < html.index(">other<")
    assert "data-feed" not in html  # not caught up: no live tail yet
    assert 'rel="next"' in html
    second = client.get(url + "?" + first.context["next_query"])
    assert second.status_code == 200
    assert [r["event"].payload for r in second.context["rows"]] == [{"a": 2}]
    assert "data-feed" in second.content.decode()  # caught up: it follows the feed


def test_all_events_filters_as_a_stream_page_does(alice, project, stream):
    other = create_stream(project, "other")
    day = datetime(2026, 1, 5, 12, tzinfo=UTC)
    append(stream, [NewEvent("price.set", {"p": 1}, actor="ann", timestamp=day)])
    append(other, [NewEvent("stock.add", {"s": 1}, timestamp=day + timedelta(hours=1))])
    append(
        stream, [NewEvent("price.cut", {"p": 0}, actor="bo", timestamp=day + timedelta(hours=2))]
    )
    client = as_user(alice)
    url = reverse("project-log", args=["acme"])

    def types(**query):
        response = client.get(url, query)
        assert response.status_code == 200
        return [r["event"].type for r in response.context["rows"]]

    assert types(stream="pricing") == ["price.set", "price.cut"]
    assert types(type="price.c") == ["price.cut"]
    assert types(actor="ann") == ["price.set"]
    assert types(since="2026-01-05T12:30", until="2026-01-05T13:30") == ["stock.add"]
    for bad in ({"stream": "nowhere"}, {"after": "12"}, {"since": "yesterday"}):
        response = client.get(url, bad)
        assert response.status_code == 400 and response.context["rows"] == []
        assert "Fix the filter" in response.content.decode()


def test_all_events_checks_membership_and_escapes(alice, charlie, project, stream):
    append(stream, [NewEvent(XSS, {"x": 1}, actor=XSS)])
    url = reverse("project-log", args=["acme"])
    assert as_user(charlie).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page
    html = as_user(alice).get(url).content.decode()
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert as_user(charlie).get(reverse("project-log-feed", args=["acme"])).status_code == 404


def test_the_page_feed_streams_events_and_is_capped_per_user(alice, project, stream, settings):
    settings.CONTINUST_FEED_SECONDS = 0  # catch up, then end
    settings.CONTINUST_FEED_MAX_OPEN = 1
    put(stream, {"a": 1})
    client = as_user(alice)
    url = reverse("project-log-feed", args=["acme"])
    held = client.get(url, {"stream": "pricing"})
    assert held.status_code == 200 and held["Content-Type"] == "text/event-stream"
    refused = client.get(url)
    assert refused.status_code == 429 and "CONTINUST_FEED_MAX_OPEN" in refused.content.decode()
    body = b"".join(held.streaming_content).decode()
    assert '"payload":{"a":1}' in body and "event: event" in body
    assert OpenFeed.objects.count() == 0
    resumed = client.get(url, headers={"Last-Event-ID": body.split("id: ")[1].split("\n")[0]})
    assert "event: event" not in b"".join(resumed.streaming_content).decode()
    assert client.get(url, {"stream": "nowhere"}).status_code == 400


def test_a_stream_page_tails_its_feed_and_slides_in_time(alice, charlie, project, stream):
    put(stream, {"a": 1})
    between = timezone.now()
    second = put(stream, {"b": 2})[0]
    first = stream.versions.order_by("id").first()
    client = as_user(alice)
    page = client.get(reverse("stream", args=["acme", stream.pk])).content.decode()
    feed = reverse("project-log-feed", args=["acme"])
    assert f'data-feed="{feed}?stream=pricing&amp;after=' in page
    assert 'id="as-of"' in page and "recorded time" in page and "event time" in page
    url = reverse("stream-as-of", args=["acme", stream.pk])
    moment = between.isoformat()
    answer = client.get(
        url, {"at": moment, "clock": "recorded", "branch": "main", "format": "json"}
    )
    assert answer.json()["version"] == first.pk
    assert "main as of recorded time" in answer.json()["label"]
    latest = client.get(url, {"at": timezone.now().isoformat(), "clock": "event", "branch": "main"})
    assert latest.status_code == 302 and latest["Location"].endswith(f"?v={second.pk}")
    early = client.get(url, {"at": "2000-01-01T00:00", "clock": "recorded", "branch": "main"})
    assert early.status_code == 404 and "no version yet" in early.content.decode()
    bad = client.get(url, {"at": "soon", "clock": "wall", "branch": "main", "format": "json"})
    assert bad.status_code == 400 and "clock" in bad.json()["error"]
    missing = client.get(url, {"branch": "main"}).content.decode()
    assert "That cannot be read" in missing
    assert "as of: this field is required; clock: this field is required." in missing
    assert client.get(url, {"at": moment, "branch": "nope", "clock": "event"}).status_code == 404
    assert as_user(charlie).get(url, {"at": moment}).status_code == 404


def test_time_travel_starts_on_the_first_branch_where_there_is_no_main(alice, project):
    repo = create_stream(project, "repo")
    append(repo, [NewEvent(type="commit", payload={"a": 1})], branch="master")
    page = as_user(alice).get(reverse("stream", args=["acme", repo.pk])).content.decode()
    assert 'name="branch" value="master"' in page

"""The project's log over HTTP ($all), and states as of a moment or a log position."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import Scope
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append, fork
from continust.models import Event
from tests.api.conftest import Api, issue
from tests.conftest import put

pytestmark = pytest.mark.django_db


def _all(api: Api, **params):
    """Every item of the log, page by page, and the pages' count."""
    items, pages, after = [], 0, "0"
    while True:
        response = api.get("/projects/acme/events", after=after, **params)
        assert response.status_code == 200, response.json()
        body = response.json()
        items += body["items"]
        pages += 1
        after = body["next"]
        if body["caught_up"]:
            return items, pages, after


def test_the_log_pages_every_stream_in_order_with_positions(alice_api, project, stream):
    other = create_stream(project, "other")
    put(stream, {"a": 1}, {"a": 2})
    put(other, {"b": 1})
    put(stream, {"a": 3})
    items, pages, end = _all(alice_api, limit=2)
    expected = list(Event.objects.filter(project=project).order_by("position"))
    assert [i["id"] for i in items] == [str(e.id) for e in expected]
    assert pages == 3  # two full pages, then a short one
    assert [i["stream"] for i in items] == ["pricing", "pricing", "other", "pricing"]
    assert all(i["log_position"].count(".") == 1 for i in items)
    # From the end: nothing, until something is appended.
    body = alice_api.get("/projects/acme/events", after=end).json()
    assert body["items"] == [] and body["caught_up"]
    put(other, {"b": 2})
    body = alice_api.get("/projects/acme/events", after=end).json()
    assert [i["payload"] for i in body["items"]] == [{"b": 2}]
    # An event's log position reads on after it.
    after_first = alice_api.get("/projects/acme/events", after=items[0]["log_position"]).json()
    assert after_first["items"][0]["id"] == items[1]["id"]


def test_the_log_filters_by_stream_type_actor_correlation_and_time(alice_api, project, stream):
    other = create_stream(project, "other")
    together = uuid.uuid4()
    day = datetime(2026, 1, 5, 12, tzinfo=UTC)
    append(stream, [NewEvent("price.set", {"p": 1}, actor="ann", timestamp=day)])
    append(
        other,
        [NewEvent("stock.add", {"s": 1}, correlation=together, timestamp=day + timedelta(hours=1))],
    )
    append(
        stream, [NewEvent("price.cut", {"p": 0}, actor="bo", timestamp=day + timedelta(hours=2))]
    )

    def types(**params):
        return [i["type"] for i in _all(alice_api, **params)[0]]

    assert types(stream="pricing") == ["price.set", "price.cut"]
    assert types(type="price.") == ["price.set", "price.cut"]
    assert types(actor="bo") == ["price.cut"]
    assert types(correlation=str(together)) == ["stock.add"]
    assert types(since="2026-01-05T13:00:00Z") == ["stock.add", "price.cut"]
    assert types(until="2026-01-05T13:00:00Z") == ["price.set"]
    assert types(since="2026-01-05T13:30:00+01:00", until="2026-01-05T13:30:00Z") == ["stock.add"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"after": "12"}, 400, "invalid_request"),
        ({"after": "1.99999999999999999999"}, 400, "invalid_request"),
        ({"after": "9223372036854775808.1"}, 400, "invalid_request"),
        ({"limit": "0"}, 400, "invalid_request"),
        ({"since": "2026-01-05T12:00:00"}, 400, "invalid_request"),
        ({"correlation": "nope"}, 400, "invalid_request"),
        ({"stream": "nowhere"}, 404, "not_found"),
    ],
)
def test_the_log_refuses_what_it_cannot_read_exactly(alice_api, stream, params, status, code):
    response = alice_api.get("/projects/acme/events", **params)
    assert response.status_code == status, response.json()
    assert response.json()["code"] == code


def test_the_largest_position_is_accepted(alice_api, stream):
    response = alice_api.get(
        "/projects/acme/events", after="9223372036854775807.9223372036854775807"
    )
    assert response.status_code == 200 and response.json()["items"] == []


def test_strangers_and_unscoped_tokens_see_no_log(charlie, project, stream, anonymous_api):
    put(stream, {"a": 1})
    stranger = Api(Client(), issue(charlie, [], Scope.READ))
    for api in (stranger,):
        for path in ("/projects/acme/events", "/projects/acme/events/feed", "/projects/acme/state"):
            response = api.get(path, as_of_position="0")
            assert response.status_code == 404, path
    assert anonymous_api.get("/projects/acme/events").status_code == 401


# -- time travel ------------------------------------------------------------------


def test_a_branch_state_as_of_recorded_time_event_time_and_position(alice_api, project, stream):
    day = datetime(2026, 1, 5, 12, tzinfo=UTC)
    append(stream, [NewEvent("set", {"a": 1}, timestamp=day)])
    between = timezone.now()
    mid = alice_api.get("/projects/acme/events").json()["next"]
    append(stream, [NewEvent("set", {"b": 2}, timestamp=day + timedelta(hours=2))])
    path = "/projects/acme/streams/pricing/state"

    now = alice_api.get(path).json()
    assert now["state"] == {"a": 1, "b": 2} and now["as_of"] is None
    recorded = alice_api.get(path, as_of=between.isoformat()).json()
    assert recorded["state"] == {"a": 1} and recorded["clock"] == "recorded"
    event_time = alice_api.get(path, as_of="2026-01-05T13:00:00Z", clock="event").json()
    assert event_time["state"] == {"a": 1} and event_time["clock"] == "event"
    later = alice_api.get(path, as_of="2026-01-05T14:00:00Z", clock="event").json()
    assert later["state"] == {"a": 1, "b": 2}
    by_position = alice_api.get(path + "/as-of-position", as_of_position=mid).json()
    assert by_position["state"] == {"a": 1} and by_position["as_of_position"] == mid
    assert by_position["as_of"] is None and by_position["clock"] is None

    before = alice_api.get(path, as_of="2026-01-05T11:00:00Z", clock="event")
    assert before.status_code == 404 and before.json()["code"] == "not_found"
    at_start = alice_api.get(path + "/as-of-position", as_of_position="0")
    assert at_start.status_code == 404 and at_start.json()["code"] == "not_found"
    assert alice_api.get(path + "/as-of-position").status_code == 400  # the position is needed
    assert alice_api.get(path, branch="nope").status_code == 404
    assert alice_api.get(path, clock="wall").status_code == 400


def test_the_project_as_of_a_position_pages_streams(alice_api, project, stream):
    other = create_stream(project, "other")
    put(stream, {"a": 1})
    mid = alice_api.get("/projects/acme/events").json()["next"]
    put(other, {"b": 1})
    put(stream, {"a": 2})
    fork(stream, "side", stream.versions.order_by("id").first())
    body = alice_api.get("/projects/acme/state", as_of_position=mid, limit=1).json()
    assert [i["stream"] for i in body["items"]] == ["other"] and body["next"] == "other"
    assert body["items"][0]["version"] is None  # other had nothing yet
    rest = alice_api.get("/projects/acme/state", as_of_position=mid, after="other").json()
    assert [(i["stream"], i["state"]) for i in rest["items"]] == [("pricing", {"a": 1})]
    assert rest["next"] is None
    assert alice_api.get("/projects/acme/state").status_code == 400  # the position is needed

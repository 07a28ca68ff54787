"""Access is decided afresh by every request: the one query that finds a request's token,
membership, project and stream (api/lookup.py) caches nothing, so a change to any of them
is refused by the very next request, after one that succeeded, and writes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from api.models import ApiToken, Scope
from continust.log.projects import add_member, create_project, create_stream
from continust.models import Event, Membership, Role
from tests.api.conftest import Api, event, events_path, issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(bob, project, stream) -> Api:
    """bob, an editor of acme, with a write token that has just appended once."""
    add_member(project, bob, Role.EDITOR)
    api = Api(Client(), issue(bob, [project], Scope.WRITE))
    assert api.post(events_path(), {"events": [event({"a": 1})]}).status_code == 201
    return api


def append_once(api: Api) -> int:
    return int(api.post(events_path(), {"events": [event({"b": 2})]}).status_code)


def test_a_token_revoked_is_refused_by_the_next_append(writer):
    ApiToken.objects.get().revoke()
    assert append_once(writer) == 401
    assert Event.objects.count() == 1


def test_a_user_deactivated_is_refused_by_the_next_append(writer, bob):
    bob.is_active = False
    bob.save()
    assert append_once(writer) == 401
    assert Event.objects.count() == 1


def test_a_membership_taken_away_is_refused_by_the_next_append(writer, bob, project):
    Membership.objects.filter(user=bob, project=project).delete()
    assert append_once(writer) == 404
    assert writer.get(events_path()).status_code == 404
    assert Event.objects.count() == 1


def test_a_role_lowered_is_refused_by_the_next_append(writer, bob, project):
    Membership.objects.filter(user=bob, project=project).update(role=Role.VIEWER)
    response = writer.post(events_path(), {"events": [event({"b": 2})]})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert writer.get(events_path()).status_code == 200  # a viewer still reads
    assert Event.objects.count() == 1


def test_a_project_taken_off_the_token_is_refused_by_the_next_append(writer, project):
    ApiToken.objects.get().projects.remove(project)
    assert append_once(writer) == 404
    assert Event.objects.count() == 1


def test_a_stream_renamed_is_not_found_by_the_next_append(writer, stream):
    stream.name = "renamed"
    stream.save(update_fields=["name"])
    response = writer.post(events_path(), {"events": [event({"b": 2})]})
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "detail": "project acme has no stream 'pricing'",
    }
    assert writer.post(events_path("renamed"), {"events": [event({"b": 2})]}).status_code == 201


def test_the_same_token_on_another_project_it_is_not_scoped_to_is_404(writer, alice):
    other = create_project("other", "Other", owner=alice)
    add_member(other, ApiToken.objects.get().user, Role.ADMIN)
    create_stream(other, "pricing")
    response = writer.post("/projects/other/streams/pricing/events", {"events": [event({"b": 2})]})
    assert response.status_code == 404
    assert response.json()["detail"] == "no project 'other'"
    assert Event.objects.count() == 1

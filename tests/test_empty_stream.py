"""A stream with no versions yet (just created): every explorer page and API read of it
answers without a server error."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from api.models import ApiToken, Scope
from continust.log.projects import create_stream
from continust.models import Role
from tests.test_explorer_names import explorer_routes

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty(project):
    return create_stream(project, "empty")


def test_every_explorer_page_of_an_empty_stream_answers(project, empty):
    client = Client()
    client.force_login(project.memberships.get(role=Role.ADMIN).user)
    tried = 0
    for route in explorer_routes():
        if "<int:stream_id>" not in route:
            continue
        tried += 1
        url = "/" + re.sub(
            r"<(\w+):(\w+)>",
            lambda m: {"slug": project.slug, "stream_id": str(empty.pk)}.get(m.group(2), "1"),
            route,
        )
        for headers in ({}, {"HX-Request": "true"}):
            answer = client.get(url, {"fragment": "page"}, headers=headers)
            assert answer.status_code < 500, url
            answer = client.get(url, headers=headers)
            assert answer.status_code < 500, url
    assert tried > 20


def test_every_api_read_of_an_empty_stream_answers(alice, project, empty):
    token = ApiToken.issue(alice, "ci", [project], Scope.READ)[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    spec = client.get("/api/openapi.json").json()
    tried = 0
    for path, operations in spec["paths"].items():
        if "get" not in operations or "/streams/{name}" not in path:
            continue
        tried += 1
        url = re.sub(
            r"\{(\w+)\}",
            lambda m: {"slug": project.slug, "name": empty.name}.get(m.group(1), "1"),
            path,
        )
        answer = client.get(url)
        assert answer.status_code < 500, (url, answer.content[:300])
    assert tried > 20

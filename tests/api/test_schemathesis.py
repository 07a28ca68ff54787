"""Schemathesis against the API's own spec: no 5xx, every status and body as documented.

Requests are generated for every operation from the spec and sent to the Django
WSGI app in-process, with alice's write token. Most generated project slugs,
stream names and version references would name nothing, so part of them are
pointed at the stream the fixture fills, to reach the answers beyond 404.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiToken, Scope
from continust.store import NewEvent, append, fork

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance,
          content_type_conformance]


@pytest.fixture
def filled(alice, project, stream):
    """A stream with a fork, a few events with causation, and alice's write token."""
    root = uuid.uuid4()
    first = append(stream, [NewEvent(type="set", payload={"a": 1}, id=root)]).versions[0]
    append(stream, [NewEvent(type="set", payload={"b": [1, 2]}, causation=root)])
    fork(stream, "feature", first)
    append(stream, [NewEvent(type="set", payload={"c": {"d": None}})], branch="feature")
    secret = ApiToken.issue(alice, "schemathesis", [project], Scope.WRITE)[1]
    refs = ["main", "feature", str(first.pk), f"v{first.pk}"]
    return {"secret": secret, "refs": refs, "event": str(root), "version": first.pk}


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """As Django's test client does: a request must not close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded at import (the spec needs no database); schemathesis.pytest.from_fixture would load
# it lazily, but it does not work with pytest 9 yet.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", WSGIHandler())


def _pick(value: object, choices: list[str]) -> str | None:
    """Point two generated values out of three at known things, deterministically."""
    digest = hashlib.sha256(repr(value).encode()).digest()
    return choices[digest[0] % len(choices)] if digest[1] % 3 else None


def _aim(case, filled) -> None:
    path = case.path_parameters or {}
    if "slug" in path and _pick(path["slug"], ["acme"]):
        path["slug"] = "acme"
    if "name" in path and _pick(path["name"], ["pricing"]):
        path["name"] = "pricing"
    if "event_id" in path and _pick(path["event_id"], [filled["event"]]):
        path["event_id"] = filled["event"]
    if "version_id" in path and _pick(path["version_id"], ["v"]):
        path["version_id"] = filled["version"]
    query = case.query or {}
    for key in ("a", "b", "of", "ref"):
        if key in query:
            query[key] = _pick(query[key], filled["refs"]) or query[key]
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("events"), list) and _pick(body, ["x"]):
        # Generated ids and heads mostly collide with earlier examples: let most batches
        # be new ones, to reach the appends that succeed or that the reducer refuses.
        body.pop("expected_head", None)
        for item in body["events"]:
            if isinstance(item, dict):
                item.pop("id", None)
                item.pop("causation", None)


@schema.parametrize()
# derandomize: CI draws the same examples every run, so a failure there is reproducible and
# never somebody else's surprise; raise max_examples locally to explore further.
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_spec_says(case, filled):
    _aim(case, filled)
    case.call_and_validate(headers={"Authorization": f"Bearer {filled['secret']}"},
                           checks=CHECKS)

"""Per-token rate limiting: a burst above CONTINUST_API_RATE is refused with 429 and
Retry-After, and another token goes on as before."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from api.models import Scope
from tests.api.conftest import Api, issue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts():
    caches["api-rate"].clear()
    yield
    caches["api-rate"].clear()


@override_settings(CONTINUST_API_RATE="3/min")
def test_a_burst_is_refused_with_429_and_retry_after(alice, project, stream):
    api = Api(Client(), issue(alice, [project], Scope.READ))
    answers = [api.get("/projects/acme/streams").status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    refused = api.get("/projects/acme/streams")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "3/min" in refused.json()["detail"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Every operation counts against the same token, writes included.
    assert api.post("/projects/acme/streams", {"name": "other"}).status_code == 429


@override_settings(CONTINUST_API_RATE="2/h")
def test_another_token_is_unaffected(alice, bob, project, stream):
    busy = Api(Client(), issue(alice, [project], Scope.READ, name="busy"))
    calm = Api(Client(), issue(alice, [project], Scope.READ, name="calm"))
    bobs = Api(Client(), issue(bob, [project], Scope.READ))
    for _ in range(2):
        assert busy.get("/projects").status_code == 200
    assert busy.get("/projects").status_code == 429
    assert calm.get("/projects").status_code == 200
    assert bobs.get("/projects").status_code == 200
    assert calm.get("/projects").status_code == 200
    assert calm.get("/projects").status_code == 429


@override_settings(CONTINUST_API_RATE=None)
def test_no_limit_when_turned_off(alice, project):
    api = Api(Client(), issue(alice, [project], Scope.READ))
    assert {api.get("/projects").status_code for _ in range(30)} == {200}


@override_settings(CONTINUST_API_RATE="1/min")
def test_a_request_without_a_token_is_401_not_counted(alice, project, anonymous_api):
    assert anonymous_api.get("/projects").status_code == 401
    assert anonymous_api.get("/projects").status_code == 401


def test_the_spec_documents_429_on_every_operation():
    spec = Client().get("/api/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "429" in operation["responses"], (method, path)

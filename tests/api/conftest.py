"""API fixtures: tokens for the personas and a small client that speaks JSON with a bearer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from api.models import ApiToken, Scope


@dataclass
class Api:
    """Call the API with one token (or none)."""

    client: Client
    token: str | None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api{path}", params, headers=self.headers())

    def post(self, path: str, body: Any = None, *, raw: bytes | str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(
            f"/api{path}", data, content_type="application/json", headers=self.headers()
        )


def issue(user, projects, scope=Scope.WRITE, name="ci") -> str:
    return ApiToken.issue(user, name, projects, scope)[1]


@pytest.fixture
def alice_api(alice, project) -> Api:
    """alice, an admin of acme, with a write token scoped to acme."""
    return Api(Client(), issue(alice, [project], Scope.WRITE))


@pytest.fixture
def bob_api(bob, project) -> Api:
    """bob, a viewer of acme, with a write token scoped to acme (his role still forbids it)."""
    return Api(Client(), issue(bob, [project], Scope.WRITE))


@pytest.fixture
def anonymous_api(db) -> Api:
    return Api(Client(), None)


def events_path(stream_name: str = "pricing") -> str:
    return f"/projects/acme/streams/{stream_name}/events"


def event(payload: dict[str, Any], type: str = "set", **fields: Any) -> dict[str, Any]:
    return {"type": type, "payload": payload, **fields}


@pytest.fixture
def server_sessions_closed():
    """Wait, after the test, for the live server's threads to close their sessions.

    They close them right after answering, which can be just after the client
    read the answer; the test database cannot be dropped while they are open.
    """
    yield
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)

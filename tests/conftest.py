"""Shared fixtures: the personas alice (admin), bob (member) and charlie (no access)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from continust.models import Project, Role, Stream
from continust.projects import add_member, create_project, create_stream
from continust.store import NewEvent, append

# start_worker and worker_queue: a real Celery worker for tests marked "worker".
pytest_plugins = ["tests.worker"]


@pytest.fixture
def alice(db: Any) -> User:
    return User.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(db: Any) -> User:
    return User.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def charlie(db: Any) -> User:
    return User.objects.create_user("charlie", password="charlie-password-1")


@pytest.fixture
def project(alice: User, bob: User) -> Project:
    created = create_project("acme", "Acme", owner=alice)
    add_member(created, bob, Role.VIEWER)
    return created


@pytest.fixture
def stream(project: Project) -> Stream:
    return create_stream(project, "pricing")


def events(*payloads: dict[str, Any], type: str = "set") -> list[NewEvent]:
    """Build events of one type from payloads."""
    return [NewEvent(type=type, payload=p) for p in payloads]


def put(stream: Stream, *payloads: dict[str, Any], branch: str = "main") -> list[Any]:
    """Append payloads to a branch and return the versions made."""
    return append(stream, events(*payloads), branch=branch).versions


@pytest.fixture(autouse=True)
def _sqlite_flush_allowed(request: pytest.FixtureRequest) -> Any:
    """Let Django empty an SQLite test database after a transactional test.

    The triggers stay in force during the test; they are dropped just before
    Django's flush (this fixture is torn down first) and put back by the next test.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    if not transactional and "transactional_db" not in request.fixturenames \
            and "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    from django.db import connection

    from continust import triggers

    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        triggers.install("sqlite", cursor.execute)
    yield
    with connection.cursor() as cursor:
        triggers.remove("sqlite", cursor.execute)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright keeps an event loop running in this thread
    until the session ends, and asyncio.run() refuses to start under it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)

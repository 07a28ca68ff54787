"""Shared fixtures: the personas alice (admin), bob (member) and charlie (no access)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_migrate

from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Project, Role, Stream

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


def write_beside(stream: Stream, n: int, pair_every: int) -> None:
    """Append ``n`` events from a thread of its own, every ``pair_every``-th with a second
    one in the same transaction; close the thread's connection at the end."""
    from django.db import connections, transaction

    try:
        for k in range(n):
            if k % pair_every == 0:
                with transaction.atomic():
                    append(stream, [NewEvent(type="t", payload={"k": k})])
                    append(stream, [NewEvent(type="t", payload={"k": -k})])
            else:
                append(stream, [NewEvent(type="t", payload={"k": k})])
    finally:
        connections.close_all()


def put(stream: Stream, *payloads: dict[str, Any], branch: str = "main") -> list[Any]:
    """Append payloads to a branch and return the versions made."""
    return append(stream, events(*payloads), branch=branch).versions


@pytest.fixture(autouse=True)
def _empty_caches() -> Any:
    """Start each test with empty caches: the database is rolled back between tests, but a
    state cached by an earlier test (keyed by its hash) would save a query in a later one
    and make its query counts depend on the order the tests ran in."""
    from django.core.cache import caches

    for cache in caches.all(initialized_only=True):
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def _flush_allowed(request: pytest.FixtureRequest) -> Any:
    """Let Django empty the test database after a transactional test.

    The triggers stay in force during the test; the ones the flush would meet are
    dropped just before it (this fixture is torn down first): on SQLite the row
    triggers, put back by the next test; on PostgreSQL, which flushes with TRUNCATE,
    only the truncate guard, put back right after the flush (``_guard_again``).
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    if (
        not transactional
        and "transactional_db" not in request.fixturenames
        and "live_server" not in request.fixturenames
    ):
        yield
        return
    request.getfixturevalue("transactional_db")
    from django.db import connection

    from continust.log import triggers

    if connection.vendor == "postgresql":
        yield
        with connection.cursor() as cursor:
            triggers.remove_truncate_guard("postgresql", cursor.execute)
        _guard_removed.add(connection.alias)
        return
    with connection.cursor() as cursor:
        triggers.install("sqlite", cursor.execute)
    yield
    with connection.cursor() as cursor:
        triggers.remove("sqlite", cursor.execute)


_guard_removed: set[str] = set()


def _guard_again(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Put the truncate guard back once Django's flush (which ends in post_migrate) is done.

    Only where ``_flush_allowed`` took it off: the migrations alone install it.
    """
    from django.db import connections

    from continust.log import triggers

    if getattr(sender, "label", None) != "continust" or using not in _guard_removed:
        return
    _guard_removed.discard(using)
    with connections[using].cursor() as cursor:
        triggers.install_truncate_guard("postgresql", cursor.execute)


post_migrate.connect(_guard_again, dispatch_uid="continust-tests-truncate-guard")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last, and those on the session's browser (``tests/browser``)
    after those that start Playwright for themselves: the session's Playwright keeps an
    event loop running in this thread until the session ends, and neither asyncio.run()
    nor another sync_playwright() starts under it. The sort is stable, so a random order
    within each group stays."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("browser") is not None,
            "browser" in getattr(item, "fixturenames", ()),
        )
    )

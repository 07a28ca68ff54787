"""A write that times out on the database's lock answers 503 with Retry-After, not 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from continust.models import Branch, Event
from tests.api.conftest import Api, events_path, issue
from tests.conftest import put

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def another_writer_holds_the_lock(stream) -> Iterator[None]:
    """Hold the write lock from a second connection, and have this one give up quickly."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # SQLite's one writer
        wait, unwait = "PRAGMA busy_timeout = 50", "PRAGMA busy_timeout = 30000"
    else:
        import psycopg

        other = psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"],
            dbname=settings["NAME"],
        )
        # The stream's row lock, which every append takes first.
        other.execute("SELECT 1 FROM continust_stream WHERE id = %s FOR UPDATE", [stream.pk])
        wait, unwait = "SET lock_timeout = '50ms'", "RESET lock_timeout"
    with connection.cursor() as cursor:
        cursor.execute(wait)
    try:
        yield
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute(unwait)


def test_an_api_append_behind_another_writer_gets_503_with_retry_after(alice, stream):
    api = Api(Client(), issue(alice, [stream.project]))
    with another_writer_holds_the_lock(stream):
        answer = api.post(events_path(), {"events": [{"type": "set", "payload": {"a": 1}}]})
    assert answer.status_code == 503, answer.content
    assert answer["Retry-After"] == "1"
    assert answer.json()["code"] == "database_busy"
    assert not Event.objects.exists()
    assert (
        api.post(events_path(), {"events": [{"type": "set", "payload": {"a": 1}}]}).status_code
        == 201
    )


def test_an_explorer_fork_behind_another_writer_gets_503_with_retry_after(alice, stream):
    (v1,) = put(stream, {"a": 1})
    client = Client()
    client.force_login(alice)
    url = reverse("fork", args=[stream.project.slug, stream.pk])
    with another_writer_holds_the_lock(stream):
        answer = client.post(url, {"at": v1.pk, "name": "later"})
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert not Branch.objects.filter(name="later").exists()


def test_an_api_append_to_a_branch_with_a_head_behind_another_writer_gets_503(alice, stream):
    # A head to append on: on PostgreSQL the append takes the one-statement path.
    put(stream, {"a": 1})
    api = Api(Client(), issue(alice, [stream.project]))
    with another_writer_holds_the_lock(stream):
        answer = api.post(events_path(), {"events": [{"type": "set", "payload": {"b": 2}}]})
    assert answer.status_code == 503, answer.content
    assert answer["Retry-After"] == "1"
    assert answer.json()["code"] == "database_busy"
    assert Event.objects.filter(stream=stream).count() == 1

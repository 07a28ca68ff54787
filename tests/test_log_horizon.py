"""What is settled in a project's log depends on the transactions of its own database only.

A transaction left open in another database of the same PostgreSQL server (another
application, another test process) cannot write events here, so it must not hold back
readers of the log, and the subscribers that follow it."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from continust.log.projects import create_project, create_stream
from continust.read.project_log import read_log
from tests.conftest import put


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_transaction_open_in_another_database_does_not_hold_the_log_back():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing is held back")
    stream = create_stream(create_project("held"), "s")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["dbname"] = "postgres"
    with psycopg.connect(**params) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # takes a transaction id, stays open
        put(stream, {"a": 1})
        page = read_log(stream.project)
        assert [e.event.payload for e in page.entries] == [{"a": 1}]
        elsewhere.rollback()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_transaction_open_in_this_database_still_holds_the_log_back():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing is held back")
    stream = create_stream(create_project("held"), "s")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as here:
        here.execute("SELECT pg_current_xact_id()")  # it could still append events
        put(stream, {"a": 1})
        assert read_log(stream.project).entries == []
        here.rollback()
    assert [e.event.payload for e in read_log(stream.project).entries] == [{"a": 1}]

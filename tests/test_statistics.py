"""Bulk writers refresh the planner's statistics; small writes leave them to autovacuum."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from continust.interchange.jsonl import export_lines, import_lines
from continust.log import statistics
from continust.log.projects import create_project
from tests.conftest import put

pytestmark = pytest.mark.django_db


def analyzed(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]


def test_a_bulk_import_analyzes_the_log_tables(project, stream):
    put(stream, *({"n": n} for n in range(600)))
    lines = list(export_lines(project))
    elsewhere = create_project("copy", "Copy")
    with CaptureQueriesContext(connection) as queries:
        result = import_lines(elsewhere, lines)
    assert result.events + result.versions >= statistics.BULK_ROWS
    assert analyzed(queries) == [f"ANALYZE {table}" for table in statistics.TABLES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'continust_event'")
            assert cursor.fetchone()[0] >= 600


def test_a_small_import_leaves_them(project, stream):
    put(stream, {"a": 1})
    lines = list(export_lines(project))
    with CaptureQueriesContext(connection) as queries:
        import_lines(create_project("copy", "Copy"), lines)
    assert analyzed(queries) == []

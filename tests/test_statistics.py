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


def test_a_replay_analyzes_what_it_wrote_and_nothing_else(
    stream, django_capture_on_commit_callbacks
):
    from continust.replays import replay as replays

    put(stream, *({"n": n} for n in range(statistics.BULK_ROWS)))
    replay = replays.start_replay(stream, end="main")
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert replays.run(replay.pk) == "done"
    # Versions and their parent links; the states are the originals', none of them new.
    assert analyzed(queries) == [f"ANALYZE {table}" for table in statistics.REPLAYED]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_table_ten_times_the_write_is_left_to_autovacuum():
    def pretend_analyzed_with(rows: float) -> None:
        with connection.cursor() as cursor:  # the test's transaction rolls it back
            cursor.execute(
                "UPDATE pg_class SET reltuples = %s WHERE oid = 'continust_event'::regclass",
                [rows],
            )

    pretend_analyzed_with(100_000)
    assert not statistics.refresh(9_999, ["continust_event"])
    assert statistics.refresh(10_000, ["continust_event"])
    pretend_analyzed_with(-1)  # never analyzed
    assert statistics.refresh(statistics.BULK_ROWS, ["continust_event"])
    assert statistics.refresh(None, ["continust_event"])  # no count: always

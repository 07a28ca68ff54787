"""Planner statistics after bulk work, so page queries never depend on autovacuum's luck.

PostgreSQL plans from statistics that autovacuum's ANALYZE keeps; where autovacuum is
off or behind, a freshly imported or replayed stream is planned as if it were empty.
Bulk writers (imports, replays, compactions, the demo) call ``refresh`` when they are
done; single appends leave it to autovacuum.
"""

from __future__ import annotations

from django.db import connection

# The tables whose row counts and value spreads the explorer's and the API's plans use.
TABLES = (
    "continust_event",
    "continust_version",
    "continust_versionparent",
    "continust_state",
    "continust_branchmove",
)

# Below this many rows written, the statistics cannot have gone far wrong.
BULK_ROWS = 1000


def refresh(rows_written: int = BULK_ROWS) -> bool:
    """ANALYZE the log's tables after a bulk write of ``rows_written`` rows; tell whether
    it ran (PostgreSQL and SQLite both take ANALYZE per table)."""
    if rows_written < BULK_ROWS:
        return False
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"ANALYZE {table}")
    return True

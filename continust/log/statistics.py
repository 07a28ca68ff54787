"""Planner statistics after bulk work, so page queries never depend on autovacuum's luck.

PostgreSQL plans from statistics that autovacuum's ANALYZE keeps; where autovacuum is
off or behind, a freshly imported or replayed stream is planned as if it were empty.
Bulk writers (imports, replays, compactions, the demo) call ``refresh`` when they are
done; single appends leave it to autovacuum. A table is analyzed again only where the
write may have moved its statistics as far as autovacuum's default threshold allows (a
tenth of its rows): the plans are then as good as a running autovacuum would keep them,
and a replay of a few thousand events into a large log is not charged a full ANALYZE.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from continust.core.database import on_postgresql

# The tables whose row counts and value spreads the explorer's and the API's plans use.
TABLES = (
    "continust_event",
    "continust_version",
    "continust_versionparent",
    "continust_state",
    "continust_branchmove",
)

# What a replay writes in bulk: versions and their parent links (and, with another
# reducer version, states); a move of its branch a chunk does not shift any statistics.
REPLAYED = ("continust_version", "continust_versionparent")

# Below this many rows written, the statistics cannot have gone far wrong.
BULK_ROWS = 1000
# Nor when the write added less than this share of a table's rows as last analyzed:
# autovacuum's own default threshold (``autovacuum_analyze_scale_factor``).
SCALE = 0.1


def refresh(rows_written: int | None = None, tables: Sequence[str] = TABLES) -> bool:
    """ANALYZE the log's tables (or those of ``tables`` a bulk writer wrote) after a bulk
    write of ``rows_written`` rows (every one of them when no count is given); tell
    whether it ran (PostgreSQL and SQLite both take ANALYZE per table)."""
    if rows_written is None:
        stale = list(tables)
    elif rows_written < BULK_ROWS:
        return False
    else:
        stale = _stale(tables, rows_written)
    if not stale:
        return False
    with connection.cursor() as cursor:
        for table in stale:
            cursor.execute(f"ANALYZE {table}")
    return True


def _stale(tables: Sequence[str], rows_written: int) -> list[str]:
    """The tables whose statistics a write of ``rows_written`` rows may have put off: on
    PostgreSQL those never analyzed or last analyzed with fewer than ``rows_written /
    SCALE`` rows (as autovacuum would judge them); elsewhere every one."""
    if not on_postgresql():
        return list(tables)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.name, c.reltuples FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, k) "
            "LEFT JOIN pg_class c ON c.oid = to_regclass(t.name) ORDER BY t.k",
            [list(tables)],
        )
        return [
            name
            for name, rows in cursor.fetchall()
            if rows is None or rows < 0 or rows_written >= SCALE * rows
        ]

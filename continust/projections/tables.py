"""The tables of a projection: named per project and generation, created, dropped, counted.

A projection's table ``daily`` of project 7 in generation 2 is ``proj_7_event_counts_daily_g2``:
every project has its own copy, and a rebuild creates the next generation beside the
live one, so swapping it in is a change of the generation number (and a drop of the old
tables) in one transaction; no rename, so indexes named after ``{table}`` never clash.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from continust.models import Projection as ProjectionRow
from continust.projections.base import Projection

__all__ = ["count_rows", "create", "drop", "names"]


def names(row: ProjectionRow, projection: Projection, generation: int) -> dict[str, str]:
    """Short table name -> the generated name, for ``row``'s project and ``generation``."""
    return {
        table: f"proj_{row.project_id}_{row.name}_{table}_g{generation}"
        for table in projection.tables
    }


def _statements(declared: str | Sequence[str]) -> list[str]:
    return [declared] if isinstance(declared, str) else list(declared)


def create(row: ProjectionRow, projection: Projection, generation: int) -> dict[str, str]:
    """Create the generation's tables (dropping leftovers of the same name) in the current
    transaction; return their names."""
    named = names(row, projection, generation)
    with connection.cursor() as cursor:
        for table, name in named.items():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in _statements(projection.tables[table]):
                cursor.execute(statement.format(table=name))
    return named


def drop(row: ProjectionRow, projection: Projection, generation: int) -> None:
    """Drop the generation's tables, in the current transaction."""
    with connection.cursor() as cursor:
        for name in names(row, projection, generation).values():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def count_rows(row: ProjectionRow, projection: Projection, generation: int) -> int:
    """The rows the generation's tables hold together (0 when none exist)."""
    if generation == 0:
        return 0
    existing = set(connection.introspection.table_names())
    total = 0
    with connection.cursor() as cursor:
        for name in names(row, projection, generation).values():
            if name in existing:
                cursor.execute(f"SELECT count(*) FROM {name}")
                total += int(cursor.fetchone()[0])
    return total

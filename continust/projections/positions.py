"""How far a projection is behind its project's log: events after its log position.

On PostgreSQL the log is ordered by (transaction, position) (``continust.read.
project_log``), so the events behind a position ``T.P`` are those after it in that
order, counted with the log-order index; on SQLite the position alone orders the log.
Events of transactions still running count too: they will be behind once committed.
"""

from __future__ import annotations

from django.db import connection

from continust.core.database import on_postgresql
from continust.read.project_log import LogPosition

__all__ = ["behind", "lag"]


def _after(project_id: int, at: LogPosition) -> tuple[str, list[int | str]]:
    if on_postgresql():
        return (
            "FROM continust_event WHERE project_id = %s AND (tx, position) > (%s::text::xid8, %s)",
            [project_id, str(at.tx), at.position],
        )
    return "FROM continust_event WHERE project_id = %s AND position > %s", [
        project_id,
        at.position,
    ]


def lag(project_id: int, at: LogPosition) -> int:
    """How many events of the project's log come after ``at``."""
    where, params = _after(project_id, at)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {where}", params)
        return int(cursor.fetchone()[0])


def behind(project_id: int, at: LogPosition) -> bool:
    """Tell whether any event of the project's log comes after ``at``."""
    where, params = _after(project_id, at)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 {where})", params)
        return bool(cursor.fetchone()[0])

"""The built-in projection: how many events of each type a project's log got each day.

The explorer's project page reads it (``daily_counts``) instead of counting the log on
the fly; when the projection lags, the page says by how many events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import ClassVar

from django.db import connection

from continust.projections.base import Projection
from continust.read.project_log import LogEntry

__all__ = ["EventCounts"]


class EventCounts(Projection):
    """Events per type per day (UTC, by event time), for every project."""

    name: ClassVar[str] = "event_counts"
    description = "Events per type per day (UTC), shown on the project page"
    tables = {
        "daily": "CREATE TABLE {table} (day varchar(10) NOT NULL, type varchar(200) NOT NULL,"
        " events bigint NOT NULL, PRIMARY KEY (day, type))"
    }
    batch_events = 1000

    def apply(self, entries: Sequence[LogEntry], tables: Mapping[str, str]) -> None:
        counts = Counter(
            (entry.event.timestamp.astimezone(UTC).date().isoformat(), entry.event.type)
            for entry in entries
        )
        daily = tables["daily"]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {daily} (day, type, events) VALUES (%s, %s, %s)"
                f" ON CONFLICT (day, type) DO UPDATE SET events = {daily}.events + excluded.events",
                [(day, kind, n) for (day, kind), n in sorted(counts.items())],
            )


def daily_counts(table: str, days: int) -> list[tuple[str, str, int]]:
    """(day, type, events) of the latest ``days`` days that have events, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT day, type, events FROM {table} WHERE day IN"
            f" (SELECT DISTINCT day FROM {table} ORDER BY day DESC LIMIT %s)"
            " ORDER BY day DESC, type",
            [days],
        )
        return [(str(d), str(t), int(n)) for d, t, n in cursor.fetchall()]

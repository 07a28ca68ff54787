"""What a user writes to keep a projection: a class, its event types, its tables, ``apply``.

::

    class OrderTotals(Projection):
        description = "Totals per customer"
        handles = ("order.placed", "order.refunded")   # "order.*" takes a prefix
        tables = {
            "totals": [
                "CREATE TABLE {table} (customer varchar(200) PRIMARY KEY, total bigint NOT NULL)",
                "CREATE INDEX {table}_total ON {table} (total)",
            ]
        }

        def apply(self, entries, tables):
            with connection.cursor() as cursor:
                for entry in entries:
                    cursor.execute(
                        f"INSERT INTO {tables['totals']} (customer, total) VALUES (%s, %s) "
                        f"ON CONFLICT (customer) DO UPDATE SET total = {tables['totals']}.total"
                        " + excluded.total",
                        [entry.event.payload["customer"], entry.event.payload["amount"]],
                    )

The tables are declared in SQL, not as Django models: each project gets its own copy
of them, and a rebuild fills a fresh generation beside the live one, so their names
are only known when the projection runs. ``{table}`` in each statement stands for the
generated name; ``apply`` gets the names (``tables["totals"]``) and runs inside the
transaction that then moves the projection's position, so it must write only through
Django's connection and never commit. ``ON CONFLICT ... DO UPDATE`` works on both
PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from continust.read.project_log import LogEntry

__all__ = ["Projection"]


class Projection:
    """A read model kept from the log. Subclass it; ``registry`` names the subclass."""

    description: ClassVar[str] = ""
    # Event types to hand to ``apply``; an entry ending in ``*`` is a prefix; empty: all.
    handles: ClassVar[Sequence[str]] = ()
    # Short table name -> one SQL statement or a list of them, ``{table}`` for its name.
    tables: ClassVar[Mapping[str, str | Sequence[str]]] = {}
    # How many log events one transaction reads at most.
    batch_events: ClassVar[int] = 500

    def wants(self, event_type: str) -> bool:
        """Tell whether events of ``event_type`` go to ``apply``."""
        if not self.handles:
            return True
        return any(
            event_type.startswith(kind[:-1]) if kind.endswith("*") else event_type == kind
            for kind in self.handles
        )

    def apply(self, entries: Sequence[LogEntry], tables: Mapping[str, str]) -> None:
        """Write what ``entries`` (handled events, in log order) change into ``tables``."""
        raise NotImplementedError

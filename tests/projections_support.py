"""Projections for tests, named in CONTINUST_PROJECTIONS (a worker imports them by path).

``OrderLog`` writes one row per handled event and no key, so an event applied twice
shows as two rows. ``Refusing`` does the same but raises at an event of type "boom"
while ``Refusing.refuse`` is set (after writing the batch's earlier events: a batch
half applied would show). ``SlowLog`` reads small batches, for killing a worker mid-way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.db import connection

from continust.projections.base import Projection

TABLE = "CREATE TABLE {table} (event_id varchar(36) NOT NULL, type varchar(200) NOT NULL)"
SETTING = [
    "order_log=tests.projections_support.OrderLog",
    "refusing=tests.projections_support.Refusing",
    "slow_log=tests.projections_support.SlowLog",
]


class OrderLog(Projection):
    description = "every order event, one row each"
    handles = ("order.*",)
    tables = {"seen": [TABLE, "CREATE INDEX {table}_id ON {table} (event_id)"]}
    batch_events = 3

    def apply(self, entries: Sequence[Any], tables: Mapping[str, str]) -> None:
        with connection.cursor() as cursor:
            for entry in entries:
                if self.refuses(entry.event.type):
                    raise ValueError(f"event {entry.event.id} is refused")
                cursor.execute(
                    f"INSERT INTO {tables['seen']} (event_id, type) VALUES (%s, %s)",
                    [str(entry.event.id), entry.event.type],
                )

    def refuses(self, event_type: str) -> bool:
        return False


class Refusing(OrderLog):
    handles = ("order.*", "boom")
    refuse: ClassVar[bool] = True

    def refuses(self, event_type: str) -> bool:
        return event_type == "boom" and Refusing.refuse


class SlowLog(OrderLog):
    batch_events = 10


def rows(table: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, type FROM {table} ORDER BY event_id")
        return [(str(a), str(b)) for a, b in cursor.fetchall()]


class PersonalLog(Projection):
    """The e-mail address of each customer event: a projection that copies personal data."""

    description = "customers' e-mail addresses"
    handles = ("customer.*",)
    tables = {"emails": ["CREATE TABLE {table} (event_id varchar(36) NOT NULL, email text)"]}

    def apply(self, entries: Sequence[Any], tables: Mapping[str, str]) -> None:
        with connection.cursor() as cursor:
            for entry in entries:
                cursor.execute(
                    f"INSERT INTO {tables['emails']} (event_id, email) VALUES (%s, %s)",
                    [str(entry.event.id), entry.event.payload.get("email")],
                )

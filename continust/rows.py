"""Fast inserts of append-only rows: COPY on PostgreSQL, bulk_create elsewhere.

The store reserves row ids before it inserts, so versions can name their
parents and events in one pass, without waiting for RETURNING.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models

from continust.canonical import canonical_json
from continust.models import State

# Below this many rows one INSERT is a quicker round trip than COPY's protocol dance.
COPY_FROM = 50


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve ``count`` ascending primary keys of ``model``; call inside the write lock."""
    return reserve_many([(model, count)])[0]


def reserve_many(wanted: Sequence[tuple[type[models.Model], int]]) -> list[list[int]]:
    """Reserve ascending primary keys of several models in one round trip."""
    most = max((count for _, count in wanted), default=0)
    if most == 0:
        return [[] for _ in wanted]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = ", ".join(
                f"CASE WHEN n <= {int(count)} THEN nextval(pg_get_serial_sequence("
                f"'{model._meta.db_table}', '{model._meta.pk.column}')) END"
                for model, count in wanted
            )
            cursor.execute(f"SELECT {columns} FROM generate_series(1, %s) AS n", [most])
            rows = cursor.fetchall()
            return [sorted(row[i] for row in rows if row[i] is not None)
                    for i in range(len(wanted))]
        # SQLite: the IMMEDIATE transaction holds the only writer lock, so max + 1 is ours.
        reserved = []
        for model, count in wanted:
            table, column = model._meta.db_table, model._meta.pk.column
            cursor.execute(f'SELECT COALESCE(MAX("{column}"), 0) FROM "{table}"')
            start = cursor.fetchone()[0] + 1
            reserved.append(list(range(start, start + count)))
        return reserved


def insert_rows(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Insert new rows whose primary keys are already set."""
    if not objects:
        return
    if connection.vendor != "postgresql" or len(objects) < COPY_FROM:
        model.objects.bulk_create(objects, batch_size=500)
        return
    _copy_rows(model, objects)
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias


def _copy_rows(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    pk = model._meta.pk
    fields = [f for f in model._meta.concrete_fields if f is not pk or objects[0].pk is not None]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objects:
            copy.write_row(
                [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
            )


def insert_states(states: Mapping[str, Any]) -> None:
    """Store state documents by content hash; a state already stored is left as it is."""
    if not states:
        return
    if connection.vendor != "postgresql":
        State.objects.bulk_create(
            [State(hash=h, data=d) for h, d in states.items()], ignore_conflicts=True,
            batch_size=500,
        )
        return
    hashes = list(states)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO continust_state (hash, data) "
            "SELECT * FROM unnest(%s::text[], %s::text[]::jsonb[]) ON CONFLICT DO NOTHING",
            [hashes, [canonical_json(states[h]) for h in hashes]],
        )

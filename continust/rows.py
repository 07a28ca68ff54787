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


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """Reserve ``count`` ascending primary keys of ``model``; call inside the write lock."""
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, count],
            )
            return sorted(row[0] for row in cursor.fetchall())
        # SQLite: the IMMEDIATE transaction holds the only writer lock, so max + 1 is ours.
        cursor.execute(f'SELECT COALESCE(MAX("{column}"), 0) FROM "{table}"')
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + count))


def insert_rows(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Insert new rows whose primary keys are already set."""
    if not objects:
        return
    if connection.vendor != "postgresql":
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
        existing = set()
        for start in range(0, len(hashes), 5000):
            cursor.execute(
                "SELECT hash FROM continust_state WHERE hash = ANY(%s)",
                [hashes[start:start + 5000]],
            )
            existing.update(row[0] for row in cursor.fetchall())
        fresh = [h for h in hashes if h not in existing]
        if not fresh:
            return
        cursor.execute(
            "INSERT INTO continust_state (hash, data) "
            "SELECT * FROM unnest(%s::text[], %s::text[]::jsonb[]) ON CONFLICT DO NOTHING",
            [fresh, [canonical_json(states[h]) for h in fresh]],
        )

"""Fast inserts of append-only rows: COPY on PostgreSQL, bulk_create elsewhere.

The store reserves row ids before it inserts, so versions can name their
parents and events in one pass, without waiting for RETURNING.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection, models

from continust.core.database import on_postgresql
from continust.log.canonical import canonical_json
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
        if on_postgresql():
            columns = ", ".join(
                # The sequence looked up once (a scalar subquery), not once a row.
                f"CASE WHEN n <= {int(count)} THEN nextval((SELECT pg_get_serial_sequence("
                f"'{model._meta.db_table}', '{model._meta.pk.column}')::regclass)) END"
                for model, count in wanted
            )
            cursor.execute(f"SELECT {columns} FROM generate_series(1, %s) AS n", [most])
            rows = cursor.fetchall()
            return [
                sorted(row[i] for row in rows if row[i] is not None) for i in range(len(wanted))
            ]
        # SQLite: the IMMEDIATE transaction holds the only writer lock, so max + 1 is ours.
        reserved = []
        for model, count in wanted:
            table, column = model._meta.db_table, model._meta.pk.column
            cursor.execute(f'SELECT COALESCE(MAX("{column}"), 0) FROM "{table}"')
            start = cursor.fetchone()[0] + 1
            reserved.append(list(range(start, start + count)))
        return reserved


def insert_rows(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Insert new rows whose primary keys are already set, with their values as given."""
    if not objects:
        return
    pk = model._meta.pk
    fields = [f for f in model._meta.concrete_fields if f is not pk or objects[0].pk is not None]
    if not on_postgresql():
        if not any(getattr(f, "auto_now_add", False) for f in fields):
            model._default_manager.bulk_create(objects, batch_size=500)
            return
        # As COPY does, insert the values as given: bulk_create would set a time the
        # caller chose (an import's created_at) to now.
        for start in range(0, len(objects), 500):
            model._base_manager._insert(  # type: ignore[attr-defined]  # Django private API
                list(objects[start : start + 500]), fields, raw=True
            )
        for obj in objects:
            obj._state.adding = False
            obj._state.db = connection.alias
        return
    # Django's per-field preparation dominates large batches; these columns need none
    # but JSON, which PostgreSQL parses from text.
    convert = [_json_text if isinstance(f, models.JSONField) else None for f in fields]
    rows = [
        [
            c(getattr(obj, f.attname)) if c else getattr(obj, f.attname)
            for f, c in zip(fields, convert, strict=True)
        ]
        for obj in objects
    ]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(_quoted_column(f) for f in fields)
    with connection.cursor() as cursor:
        if len(rows) >= COPY_FROM:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([marks] * len(rows)),
                [value for row in rows for value in row],
            )
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias


def _quoted_column(field: models.Field[Any, Any]) -> str:
    # A concrete field always has a column; Field.column is None only on the others.
    assert field.column is not None
    return connection.ops.quote_name(field.column)


def _json_text(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


def write_all(
    states: Mapping[str, tuple[Any, str]],
    groups: Sequence[tuple[type[models.Model], Sequence[models.Model]]],
    tail: Sequence[tuple[str, Sequence[Any]]] = (),
) -> None:
    """Write states, rows of several models and some closing statements in ONE statement.

    PostgreSQL only: each group becomes a data-modifying CTE over unnest()ed arrays, so
    a whole append is a single round trip however many rows it holds. Foreign keys are
    deferred to the commit, so the order of the parts does not matter.
    """
    parts: list[str] = []
    params: list[Any] = []
    if states:
        parts.append(
            "INSERT INTO continust_state (hash, data) SELECT * FROM "
            "unnest(%s::text[], %s::text[]::jsonb[]) ON CONFLICT DO NOTHING"
        )
        params += [list(states), [text for _, text in states.values()]]
    for model, objects in groups:
        if not objects:
            continue
        pk = model._meta.pk
        fields = [
            f for f in model._meta.concrete_fields if f is not pk or objects[0].pk is not None
        ]
        casts = []
        for field in fields:
            if isinstance(field, models.JSONField):
                casts.append("%s::text[]::jsonb[]")
                params.append([_json_text(getattr(o, field.attname)) for o in objects])
            else:
                casts.append(f"%s::{field.db_type(connection)}[]")
                params.append([getattr(o, field.attname) for o in objects])
        columns = ", ".join(_quoted_column(f) for f in fields)
        parts.append(
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "
            f"SELECT * FROM unnest({', '.join(casts)})"
        )
        for obj in objects:
            obj._state.adding = False
            obj._state.db = connection.alias
    for sql, values in tail:
        parts.append(sql)
        params += list(values)
    if not parts:
        return
    ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT 1", params)


def insert_states(states: Mapping[str, Any]) -> None:
    """Store state documents by content hash; a state already stored is left as it is."""
    insert_state_texts({h: (data, canonical_json(data)) for h, data in states.items()})


def insert_state_texts(states: Mapping[str, tuple[Any, str]]) -> None:
    """Store states given with their canonical text (hashing made it already)."""
    if not states:
        return
    if not on_postgresql():
        State.objects.bulk_create(
            [State(hash=h, data=data) for h, (data, _) in states.items()],
            ignore_conflicts=True,
            batch_size=500,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO continust_state (hash, data) "
            "SELECT * FROM unnest(%s::text[], %s::text[]::jsonb[]) ON CONFLICT DO NOTHING",
            [list(states), [text for _, text in states.values()]],
        )

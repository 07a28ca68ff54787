"""The one place that knows which database is underneath, and what differs between them.

continust runs on PostgreSQL and on SQLite (the embedded default). Where a concern needs
SQL only one of them speaks, its module asks here (``on_postgresql``) or uses one of the
transaction modes below, instead of reading ``connection.vendor`` itself; each concern
keeps its dialect-specific SQL together in one module (``continust/log/rows.py`` for the
log's writes, ``continust/replays/storage.py`` for a replay's, ``continust/retention/
sizes.py`` for measuring what a stream takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection, transaction


def on_postgresql() -> bool:
    """Tell whether the default database is PostgreSQL (else SQLite)."""
    return connection.vendor == "postgresql"


def outside_transactions() -> bool:
    """Tell whether no transaction is open, neither Django's nor one the caller manages."""
    return not connection.in_atomic_block and connection.get_autocommit()


@contextmanager
def snapshot() -> Iterator[None]:
    """Read one snapshot of the database throughout: a transaction, REPEATABLE READ on
    PostgreSQL when it opens here (SQLite's one writer makes any transaction one)."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh and on_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def relaxed_commit() -> None:
    """Let the current transaction commit without waiting for its WAL to reach the disk
    (PostgreSQL's ``synchronous_commit``; nothing on SQLite). Only for writes that can be
    made again: the WAL is flushed in order, so a crash loses only the newest of them."""
    if on_postgresql():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def stored_size(column: str) -> str:
    """SQL for the bytes a stored value takes: PostgreSQL's own size after compression;
    the length of its text on SQLite."""
    return f"pg_column_size({column})" if on_postgresql() else f"length({column})"


# Django opens psycopg connections with ``prepare_threshold=None`` (unless its
# ``server_side_binding`` option is on), which turns preparing off altogether: psycopg then
# ignores ``execute(..., prepare=True)`` and PostgreSQL parses, analyses and plans the
# statement on every call. A threshold no statement reaches keeps Django's own queries
# unprepared, as Django configured them, and lets a caller that asks prepare its own.
_ONLY_WHEN_ASKED = 2**62


def preparing_cursor() -> psycopg.Cursor[Any]:
    """A psycopg cursor on Django's (open) PostgreSQL connection whose
    ``execute(..., prepare=True)`` prepares the statement once per connection."""
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    return psycopg.Cursor(raw)

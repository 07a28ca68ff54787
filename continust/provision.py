"""Create the configured database when it does not exist yet.

An embedded SQLite file's folder is made (``CONTINUST_VAR_DIR`` may name a new one).

``DATABASE_URL`` may name a database the server does not have; ``manage.py migrate``
(and so ``scripts/explore``) then creates it, connecting to the server's ``postgres``
maintenance database with the same credentials. When the role may not create databases
the error says so in one line, with the command that would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import CommandError
from django.db import OperationalError, connections
from psycopg import sql


def database_is_missing(err: Exception) -> bool:
    """Whether a connection error says the database itself does not exist."""
    text = str(err)
    return "does not exist" in text and "database" in text


def create_missing_database(alias: str = "default") -> str | None:
    """Create the PostgreSQL database ``alias`` names if it is missing (or an SQLite
    file's folder); return the PostgreSQL database's name when it was created, ``None``
    otherwise."""
    connection = connections[alias]
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return None
    if connection.vendor != "postgresql":
        return None
    try:
        connection.ensure_connection()
        return None
    except OperationalError as err:
        if not database_is_missing(err):
            raise
    params: dict[str, Any] = connection.get_connection_params()
    name = str(params["dbname"])
    try:
        with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as server:
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        pass  # created by a process that started at the same time
    except psycopg.Error as err:
        reason = " ".join(str(err).split())
        user = params.get("user") or "postgres"
        raise CommandError(
            f'database "{name}" does not exist and could not be created ({reason}): '
            f"create it with: createdb -U {user} {name}"
        ) from err
    return name

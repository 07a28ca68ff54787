"""The database triggers that make the log append-only: UPDATE and DELETE are refused.

The migration installs them; the test suite removes them on SQLite just before
Django empties the tables after a transactional test (PostgreSQL empties them
with TRUNCATE, which the triggers leave alone).
"""

from __future__ import annotations

from collections.abc import Callable

TABLES = (
    "continust_event",
    "continust_version",
    "continust_versionparent",
    "continust_state",
    "continust_branchmove",
)

_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION continust_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'continust: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""

Execute = Callable[[str], object]


def install(vendor: str, execute: Execute) -> None:
    """Create the triggers on every append-only table."""
    if vendor == "postgresql":
        execute(_POSTGRES_FUNCTION)
        for table in TABLES:
            execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION continust_refuse_change()"
            )
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE "
                    f"{operation} ON {table} BEGIN SELECT RAISE(ABORT, 'continust: {operation} "
                    f"on {table} is refused: the log is append-only'); END"
                )
    else:
        raise RuntimeError(f"continust supports PostgreSQL and SQLite, not {vendor}")


def remove(vendor: str, execute: Execute) -> None:
    """Drop the triggers."""
    for table in TABLES:
        if vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for operation in ("update", "delete"):
                execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
    if vendor == "postgresql":
        execute("DROP FUNCTION IF EXISTS continust_refuse_change()")

"""Make the database itself refuse UPDATE and DELETE on the log's immutable tables."""

from __future__ import annotations

from django.db import migrations

TABLES = [
    "continust_event",
    "continust_version",
    "continust_versionparent",
    "continust_state",
    "continust_branchmove",
]

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION continust_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'continust: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION continust_refuse_change()"
            )
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'continust: {operation} on {table} is refused: "
                    "the log is append-only'); END"
                )
    else:
        raise RuntimeError(f"continust supports PostgreSQL and SQLite, not {vendor}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for operation in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS continust_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("continust", "0001_initial")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]

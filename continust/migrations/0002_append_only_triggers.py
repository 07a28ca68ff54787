"""Make the database itself refuse UPDATE and DELETE on the log's immutable tables."""

from __future__ import annotations

from django.db import migrations

from continust import triggers


def create_triggers(apps, schema_editor):
    triggers.install(schema_editor.connection.vendor,
                     lambda sql: schema_editor.execute(sql, params=None), release_path=False)


def drop_triggers(apps, schema_editor):
    triggers.remove(schema_editor.connection.vendor,
                    lambda sql: schema_editor.execute(sql, params=None))


class Migration(migrations.Migration):
    dependencies = [("continust", "0001_initial")]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]

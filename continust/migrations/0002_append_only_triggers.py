"""Make the database itself refuse UPDATE and DELETE on the log's immutable tables."""

from __future__ import annotations

from django.db import migrations

from continust.log import triggers


class Migration(migrations.Migration):
    dependencies = [("continust", "0001_initial")]
    operations = [
        migrations.RunPython(triggers.installing(release_path=False, branches=False), triggers.removing),
    ]

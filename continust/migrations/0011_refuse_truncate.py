"""Refuse TRUNCATE on the append-only tables (PostgreSQL statement triggers).

Row triggers never see a TRUNCATE, so ``TRUNCATE continust_event CASCADE`` (or one
of the stream table, cascading) emptied the log with the triggers in force.
"""

from django.db import migrations

from continust.log import triggers


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0010_chained_branch_moves'),
    ]

    operations = [
        migrations.RunPython(triggers.installing_truncate_guard,
                             triggers.removing_truncate_guard),
    ]

"""A branch's guard finds the move that put its head there by (branch, new head), one index
probe, where it used to read every move of the branch; the branch reference is guaranteed
by the write path, so its foreign-key check goes.

SQLite makes the change by rebuilding the table, which would leave it without its
triggers (and break the branch's guard, which names it meanwhile): they come off for the
migration's duration and go back on, as they were, at its end (as in 0019)."""

import django.db.models.deletion
from django.db import migrations, models

from continust.log import triggers


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0023_subscriptions'),
    ]

    operations = [
        migrations.RunPython(triggers.removing, triggers.installing()),
        migrations.AlterField(
            model_name='branchmove',
            name='branch',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='moves', to='continust.branch'),
        ),
        migrations.AddIndex(
            model_name='branchmove',
            index=models.Index(fields=['branch', 'new_head'], name='branchmove_branch_head'),
        ),
        migrations.RunPython(triggers.installing(), triggers.removing),
    ]

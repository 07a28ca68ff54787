"""A version's first parent is a column of the version: a linear append writes no link row.

``Version.first_parent`` holds what the parent link of index 0 held (the only parent of
every version but a merge's, and none for a root); ``VersionParent`` keeps only a merge's
second and later parents, with their index (1, 2, …). Existing databases move forward
here: each version's first parent is copied onto its row, then its link of index 0 is
deleted.

The append-only triggers refuse both the UPDATE of a version and the DELETE of a link, so
this migration lifts them, and only for its own duration: they are dropped at its start
and installed again, as they were, at its end, inside the same migration (one
transaction on PostgreSQL). On SQLite a rebuilt table has no triggers either, which is
why they come off first there too.
"""

import django.db.models.deletion
from django.db import migrations, models

from continust.log import triggers


def forward(apps, schema_editor):
    schema_editor.execute(
        "UPDATE continust_version SET first_parent_id = (SELECT p.parent_id "
        "FROM continust_versionparent p WHERE p.child_id = continust_version.id "
        'AND p."index" = 0)'
    )
    schema_editor.execute('DELETE FROM continust_versionparent WHERE "index" = 0')


def backward(apps, schema_editor):
    schema_editor.execute(
        'INSERT INTO continust_versionparent (child_id, parent_id, "index") '
        "SELECT id, first_parent_id, 0 FROM continust_version WHERE first_parent_id IS NOT NULL"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0018_tags'),
    ]

    operations = [
        migrations.RunPython(triggers.removing, triggers.installing()),
        migrations.AddField(
            model_name='version',
            name='first_parent',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.version'),
        ),
        migrations.RunPython(forward, backward),
        migrations.RunPython(triggers.installing(), triggers.removing),
    ]

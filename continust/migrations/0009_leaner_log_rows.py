"""Leaner log rows, and event ids unique per project instead of across the database.

- Every event carries its project, so an id is an idempotency key within one project:
  another tenant can neither learn that an id is taken nor claim it first.
- Indexes that another index already covers go: an event's stream (the (stream, seq)
  key), a version's stream (version_stream_desc), a parent link's child (its unique
  (child, index)), a branch's stream and head (its unique name serves both; a head
  then moves with a HOT update), the heads of branch moves
  and the state key's LIKE twin; the causation index keeps only events with a cause.
- Foreign-key constraints that the write path guarantees go (a check per reference
  per row, run at every commit); the columns and their meaning stay.

SQLite rebuilds tables to change them, and a rebuilt table has no triggers: they are
taken off first and put back on the tables as they end up.
"""

import django.db.models.deletion
from django.db import migrations, models

from continust.log import triggers


def fill_projects(apps, schema_editor):
    schema_editor.execute(
        "UPDATE continust_event SET project_id = "
        "(SELECT s.project_id FROM continust_stream s WHERE s.id = continust_event.stream_id)"
    )


def drop_state_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS continust_state_hash_2a6375b5_like")


def keep(apps, schema_editor):
    pass


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0008_linear_append'),
    ]

    operations = [
        migrations.RunPython(triggers.removing, triggers.installing(branches=False)),
        migrations.AddField(
            model_name='event',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.project'),
        ),
        migrations.RunPython(fill_projects, keep),
        migrations.AlterField(
            model_name='event',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.project'),
        ),
        migrations.AlterField(
            model_name='event',
            name='id',
            field=models.UUIDField(default=__import__('uuid').uuid4, editable=False),
        ),
        migrations.AlterField(
            model_name='event',
            name='stream',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='events', to='continust.stream'),
        ),
        migrations.AlterField(
            model_name='event',
            name='causation_id',
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='event',
            constraint=models.UniqueConstraint(fields=('project', 'id'),
                                               name='event_id_unique_in_project'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('causation_id__isnull', False)),
                               fields=['causation_id'], name='event_causation'),
        ),
        migrations.AlterField(
            model_name='version',
            name='stream',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='versions', to='continust.stream'),
        ),
        migrations.AlterField(
            model_name='version',
            name='event',
            field=models.ForeignKey(db_constraint=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='versions', to='continust.event'),
        ),
        migrations.AlterField(
            model_name='versionparent',
            name='child',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='parent_links', to='continust.version'),
        ),
        migrations.AlterField(
            model_name='versionparent',
            name='parent',
            field=models.ForeignKey(db_constraint=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='child_links', to='continust.version'),
        ),
        migrations.AlterField(
            model_name='branchmove',
            name='old_head',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.version'),
        ),
        migrations.AlterField(
            model_name='branchmove',
            name='new_head',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.version'),
        ),
        migrations.AlterField(
            model_name='branch',
            name='stream',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name='branches', to='continust.stream'),
        ),
        migrations.AlterField(
            model_name='branch',
            name='head',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name='+', to='continust.version'),
        ),
        migrations.RunPython(drop_state_like_index, keep),
        migrations.RunPython(triggers.installing(branches=False), triggers.removing),
    ]

"""One lease protocol (``continust.jobs.leases``) over the replay, pipeline and compaction rows.

Their shared columns come from the abstract ``Leased`` model: the fence is a bigint
everywhere (compaction's was an integer; the others' a bigint with a check that it is
not negative, which the claim's increment from 0 never needed), compactions record
the worker holding them and pipelines count their claims. Existing rows keep their
values; the new columns start empty and at 0.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0011_refuse_truncate'),
    ]

    operations = [
        migrations.AddField(
            model_name='compaction',
            name='worker',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
        migrations.AddField(
            model_name='pipeline',
            name='attempts',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='compaction',
            name='fence',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='pipeline',
            name='fence',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='pipelinerun',
            name='fence',
            field=models.BigIntegerField(),
        ),
        migrations.AlterField(
            model_name='replay',
            name='fence',
            field=models.BigIntegerField(default=0),
        ),
    ]

"""Drop the version table's digest index and the LIKE twins Django gives CharField keys.

SQLite rebuilds the table to change an index, and a rebuilt table has no triggers:
they are taken off first and put back on the table as it ends up.
"""

import django.db.models.deletion
from django.db import migrations, models

from continust.log import triggers


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0006_retention'),
    ]

    operations = [
        migrations.RunPython(triggers.removing, triggers.installing(branches=False)),
        migrations.AlterField(
            model_name='version',
            name='digest',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='version',
            name='state',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='continust.state'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(fields=['state'], name='version_state'),
        ),
        migrations.RunPython(triggers.installing(branches=False), triggers.removing),
    ]

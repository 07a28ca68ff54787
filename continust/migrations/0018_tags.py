"""Tags: immutable names for versions; the database refuses to move one."""

import django.db.models.deletion
from django.db import migrations, models

from continust.log import triggers


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0017_projections'),
    ]

    operations = [
        migrations.CreateModel(
            name='Tag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('actor', models.CharField(blank=True, default='', max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='tag', to='continust.event')),
                ('stream', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='tags', to='continust.stream')),
                ('version', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='tags', to='continust.version')),
            ],
            options={
                'ordering': ['stream', 'name'],
                'constraints': [models.UniqueConstraint(fields=('stream', 'name'), name='tag_name_unique')],
            },
        ),
        migrations.RunPython(triggers.installing_tag_guard, triggers.removing_tag_guard),
    ]

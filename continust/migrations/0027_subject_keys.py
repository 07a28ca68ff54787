"""Keys of data subjects (crypto-shredding) and the stream setting that encrypts payloads."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0026_event_types'),
    ]

    operations = [
        migrations.AddField(
            model_name='stream',
            name='personal',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name='SubjectKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject', models.CharField(max_length=200)),
                ('key', models.BinaryField(null=True)),
                ('wrapped', models.BooleanField(default=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('erased_at', models.DateTimeField(blank=True, null=True)),
                ('erased_by', models.CharField(blank=True, default='', max_length=200)),
                ('erase_reason', models.TextField(blank=True, default='')),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='continust.project')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('project', 'subject'), name='subject_key_unique')],
            },
        ),
    ]

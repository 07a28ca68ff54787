"""A replay's shadow branch can be discarded: retention stops keeping its versions."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0013_project_self_approval'),
    ]

    operations = [
        migrations.AddField(
            model_name='replay',
            name='discarded_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='replay',
            name='discarded_by',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
    ]

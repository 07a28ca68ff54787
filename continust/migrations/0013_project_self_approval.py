"""The review rule of a project: whether whoever opened a review may approve it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0012_one_lease_protocol'),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='self_approval',
            field=models.BooleanField(default=False),
        ),
    ]

"""A stream's versions are indexed by (stream, id) ascending instead of descending.

Every append adds the stream's highest id: in an ascending index that is the rightmost
entry, which fills its pages; in the descending one it was the leftmost of the stream's
range, and every page split there left two half-empty pages (57 bytes an event against
23 for the version key). Reads newest-first scan the index backwards.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0019_first_parent_on_version'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='version', name='version_stream_desc'),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(fields=['stream', 'id'], name='version_stream'),
        ),
    ]

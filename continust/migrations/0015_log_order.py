"""The project's log in order ($all): each event remembers the transaction that wrote it.

On PostgreSQL an event's ``position`` comes from a sequence, so a writer that drew 10
can commit after one that drew 11: a reader ordering by position alone would pass 10 by
for good. Each event therefore records its transaction (``tx``, a 64-bit xid8 that never
wraps), and ``continust.read.project_log`` reads in (tx, position) order only what every
transaction older than the snapshot's oldest one still running wrote: nothing can commit
behind it. An insert also notifies channel ``continust_log`` with the project's id, so
readers following the log wake without polling. SQLite has one writer at a time, so its
positions are already commit order: nothing to add there.

Adding a column with a volatile default rewrites the table once (existing events all get
this migration's transaction id, older than any later one, and keep their position order).
"""

from django.db import migrations

FORWARD = """
ALTER TABLE continust_event ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX event_log_order ON continust_event (project_id, tx, position);
CREATE OR REPLACE FUNCTION continust_notify_log() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('continust_log', p.project_id::text)
    FROM (SELECT DISTINCT project_id FROM appended) p;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER continust_event_notify AFTER INSERT ON continust_event
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION continust_notify_log();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS continust_event_notify ON continust_event;
DROP FUNCTION IF EXISTS continust_notify_log();
DROP INDEX IF EXISTS event_log_order;
ALTER TABLE continust_event DROP COLUMN IF EXISTS tx;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0014_replay_discarded'),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]

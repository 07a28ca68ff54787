"""The one-statement append wakes the log's followers after its commit, not inside it.

PostgreSQL commits the transactions that sent a notification one at a time: the
notification queue's lock is held from before the commit record to its end, through
the disk's sync. Appends from several writers, each notifying from the event trigger
(0015), therefore committed in single file at the disk's sync rate instead of sharing
syncs. The trigger stays for every other way events are written (the locked path,
replays, imports, a user's own SQL), but a statement that sets
``continust.wake_after_commit`` for its own transaction is left to notify by itself:
``continust.log.linear`` does so, then notifies in a transaction of its own whose commit
need not wait for the disk (a wake-up is a hint; a lost one costs a follower a read).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION continust_notify_log() RETURNS trigger AS $$
BEGIN
    IF current_setting('continust.wake_after_commit', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('continust_log', p.project_id::text)
    FROM (SELECT DISTINCT project_id FROM appended) p;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION continust_notify_log() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('continust_log', p.project_id::text)
    FROM (SELECT DISTINCT project_id FROM appended) p;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0024_branchmove_branch_head'),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]

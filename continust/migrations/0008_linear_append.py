"""The function a one-statement append raises with when the tip it planned on moved.

``continust.log.linear`` writes a linear append as one statement that moves the
stream's chain end and the branch head by compare-and-set; when either did not
move, ``continust_require`` raises SQLSTATE CN001 and the statement rolls back whole.
PostgreSQL only: SQLite takes the locked path.
"""

from django.db import migrations

REQUIRE = """
CREATE OR REPLACE FUNCTION continust_require(ok boolean, message text) RETURNS boolean AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING MESSAGE = message, ERRCODE = 'CN001';
    END IF;
    RETURN true;
END
$$ LANGUAGE plpgsql;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REQUIRE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS continust_require(boolean, text)")


class Migration(migrations.Migration):

    dependencies = [
        ('continust', '0007_leaner_version_indexes'),
    ]

    operations = [
        migrations.RunPython(create, drop),
    ]

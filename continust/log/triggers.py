"""The database triggers that make the log append-only: UPDATE and DELETE are refused.

One path is let through, and only inside a compaction's transaction: while a
``continust_releasepermit`` row for a stream exists (``continust.retention.compaction`` writes
it and deletes it in the same transaction, so no other connection ever sees it),

- an event of that stream may have its payload set to JSON ``null`` and nothing else
  changed (its hashes, ids and order stay);
- a state that a version of that stream points at may be deleted.

Versions, their parent links, branch moves and released runs are refused always.
A branch is never deleted, and its head changes only together with a recorded move:
an UPDATE must name, as the branch's new ``move_hash``, a move of that branch whose
``prev_hash`` is the old one and whose new head is the new head (so a head cannot be
moved back without a move in the branch's hash chain saying so).

On PostgreSQL, TRUNCATE (which row triggers never see, and which ``CASCADE`` reaches
from the stream and project tables) is refused on every one of these tables by a
statement trigger: the truncate guard, installed by its own migration and kept apart
(its own function), so dropping the row triggers around a table rebuild leaves it be.
SQLite has no TRUNCATE; its ``DELETE`` without WHERE meets the row triggers.

The migrations install the triggers; the test suite removes them just before Django
empties the tables after a transactional test: on SQLite the row triggers, on
PostgreSQL the truncate guard only (``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable

ALWAYS = (
    "continust_version",
    "continust_versionparent",
    "continust_branchmove",
)
RELEASABLE = ("continust_event", "continust_state")
LATER = ("continust_releasedrun", "continust_releasedversion")
TABLES = ALWAYS[:1] + RELEASABLE + ALWAYS[1:] + LATER

# Every column of an event but its payload: a release must leave them as they were.
EVENT_COLUMNS = (
    "position",
    "id",
    "project_id",
    "stream_id",
    "seq",
    "type",
    "timestamp",
    "causation_id",
    "correlation_id",
    "actor",
    "prev_hash",
    "hash",
)

_POSTGRES_REFUSE = """
CREATE OR REPLACE FUNCTION continust_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'continust: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""

_POSTGRES_RELEASE = (
    f"""
CREATE OR REPLACE FUNCTION continust_release_payload() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.payload = 'null'::jsonb
       AND ({", ".join("NEW." + c for c in EVENT_COLUMNS)})
           IS NOT DISTINCT FROM ({", ".join("OLD." + c for c in EVENT_COLUMNS)})
       AND EXISTS (SELECT 1 FROM continust_releasepermit p WHERE p.stream_id = OLD.stream_id)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'continust: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
""",
    """
CREATE OR REPLACE FUNCTION continust_release_state() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND EXISTS (SELECT 1 FROM continust_releasepermit p
                   JOIN continust_version v ON v.stream_id = p.stream_id
                   WHERE v.state_id = OLD.hash)
    THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'continust: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
""",
)
_POSTGRES_FUNCTIONS = {
    "continust_event": "continust_release_payload",
    "continust_state": "continust_release_state",
}

_SQLITE_EVENT_RELEASE = (
    "NEW.payload = 'null' AND "
    + " AND ".join(f"NEW.{c} IS OLD.{c}" for c in EVENT_COLUMNS)
    + " AND EXISTS (SELECT 1 FROM continust_releasepermit p WHERE p.stream_id = OLD.stream_id)"
)
_SQLITE_STATE_RELEASE = (
    "EXISTS (SELECT 1 FROM continust_releasepermit p JOIN continust_version v "
    "ON v.stream_id = p.stream_id WHERE v.state_id = OLD.hash)"
)

# A branch's head moves only with a recorded move (checked after the statement, so a
# statement that writes both, in either order, passes).
BRANCH = "continust_branch"
_BRANCH_MOVED = (
    "EXISTS (SELECT 1 FROM continust_branchmove m WHERE m.branch_id = NEW.id "
    "AND m.hash = NEW.move_hash AND m.prev_hash = OLD.move_hash AND m.new_head_id = NEW.head_id)"
    " AND NEW.stream_id = OLD.stream_id AND NEW.name = OLD.name"
)
_POSTGRES_BRANCH = f"""
CREATE OR REPLACE FUNCTION continust_guard_branch() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND {_BRANCH_MOVED} THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'continust: % on % is refused: a branch moves only with a recorded move',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""

Execute = Callable[[str], object]

# A tag names one version for ever: an UPDATE of a tag row is refused (its own trigger,
# installed by the tags' migration; deleting is refused by the ORM and offered nowhere).
TAG = "continust_tag"
_POSTGRES_TAG = """
CREATE OR REPLACE FUNCTION continust_refuse_tag_move() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'continust: UPDATE on % is refused: a tag never moves', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""


def install_tag_guard(vendor: str, execute: Execute) -> None:
    """Refuse an UPDATE of a tag row: a tag never moves."""
    if vendor == "postgresql":
        execute(_POSTGRES_TAG)
        execute(f"DROP TRIGGER IF EXISTS {TAG}_never_moves ON {TAG}")
        execute(
            f"CREATE TRIGGER {TAG}_never_moves BEFORE UPDATE ON {TAG} "
            "FOR EACH ROW EXECUTE FUNCTION continust_refuse_tag_move()"
        )
    else:
        execute(
            f"CREATE TRIGGER IF NOT EXISTS {TAG}_never_moves BEFORE UPDATE ON {TAG} "
            f"BEGIN SELECT RAISE(ABORT, 'continust: UPDATE on {TAG} is refused: a tag never "
            "moves'); END"
        )


def remove_tag_guard(vendor: str, execute: Execute) -> None:
    """Drop the tag guard."""
    if vendor == "postgresql":
        execute(f"DROP TRIGGER IF EXISTS {TAG}_never_moves ON {TAG}")
        execute("DROP FUNCTION IF EXISTS continust_refuse_tag_move()")
    else:
        execute(f"DROP TRIGGER IF EXISTS {TAG}_never_moves")


def installing_tag_guard(apps: object, schema_editor: object) -> None:
    """A migration step that installs the tag guard."""
    install_tag_guard(schema_editor.connection.vendor, _executor(schema_editor))  # type: ignore[attr-defined]


def removing_tag_guard(apps: object, schema_editor: object) -> None:
    """A migration step that drops the tag guard."""
    remove_tag_guard(schema_editor.connection.vendor, _executor(schema_editor))  # type: ignore[attr-defined]


def install(
    vendor: str, execute: Execute, *, release_path: bool = True, branches: bool = True
) -> None:
    """Create the triggers; ``release_path=False`` gives the first migration's set, which
    predates compaction (its permit table does not exist yet), and ``branches=False`` the
    set before branch moves were chained."""
    tables = TABLES if release_path else ALWAYS[:1] + RELEASABLE + ALWAYS[1:]
    releasable = RELEASABLE if release_path else ()
    if vendor == "postgresql":
        execute(_POSTGRES_REFUSE)
        if release_path:
            for function in _POSTGRES_RELEASE:
                execute(function)
        for table in tables:
            function = (
                _POSTGRES_FUNCTIONS[table] if table in releasable else "continust_refuse_change"
            )
            execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
        if branches:
            execute(_POSTGRES_BRANCH)
            execute(
                f"CREATE TRIGGER {BRANCH}_moved_only AFTER UPDATE OR DELETE ON {BRANCH} "
                "FOR EACH ROW EXECUTE FUNCTION continust_guard_branch()"
            )
    elif vendor == "sqlite":
        allowed = {
            ("continust_event", "UPDATE"): _SQLITE_EVENT_RELEASE,
            ("continust_state", "DELETE"): _SQLITE_STATE_RELEASE,
        }
        for table in tables:
            for operation in ("UPDATE", "DELETE"):
                path = allowed.get((table, operation)) if table in releasable else None
                when = f"WHEN NOT ({path}) " if path else ""
                execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE "
                    f"{operation} ON {table} {when}BEGIN SELECT RAISE(ABORT, 'continust: "
                    f"{operation} on {table} is refused: the log is append-only'); END"
                )
        if branches:
            for operation, when in (("update", f"WHEN NOT ({_BRANCH_MOVED}) "), ("delete", "")):
                execute(
                    f"CREATE TRIGGER IF NOT EXISTS {BRANCH}_no_{operation} AFTER "
                    f"{operation.upper()} ON {BRANCH} {when}BEGIN SELECT RAISE(ABORT, "
                    f"'continust: {operation.upper()} on {BRANCH} is refused: a branch moves "
                    "only with a recorded move'); END"
                )
    else:
        raise RuntimeError(f"continust supports PostgreSQL and SQLite, not {vendor}")


MigrationStep = Callable[[object, object], None]


def installing(*, release_path: bool = True, branches: bool = True) -> MigrationStep:
    """A migration step (a ``RunPython`` function) that creates the triggers."""

    def step(apps: object, schema_editor: object) -> None:
        install(
            schema_editor.connection.vendor,  # type: ignore[attr-defined]
            _executor(schema_editor),
            release_path=release_path,
            branches=branches,
        )

    return step


def removing(apps: object, schema_editor: object) -> None:
    """A migration step that drops the triggers: before a schema change that SQLite makes
    by rebuilding a table, which would leave the rebuilt table without them."""
    remove(schema_editor.connection.vendor, _executor(schema_editor))  # type: ignore[attr-defined]


def _executor(schema_editor: object) -> Execute:
    return lambda sql: schema_editor.execute(sql, params=None)  # type: ignore[attr-defined]


def remove(vendor: str, execute: Execute) -> None:
    """Drop the triggers."""
    for table in TABLES:
        if vendor == "postgresql":
            execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for operation in ("update", "delete"):
                execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
    if vendor == "postgresql":
        execute(f"DROP TRIGGER IF EXISTS {BRANCH}_moved_only ON {BRANCH}")
        execute("DROP FUNCTION IF EXISTS continust_guard_branch()")
    else:
        for operation in ("update", "delete"):
            execute(f"DROP TRIGGER IF EXISTS {BRANCH}_no_{operation}")
    if vendor == "postgresql":
        execute("DROP FUNCTION IF EXISTS continust_refuse_change()")
        for function in _POSTGRES_FUNCTIONS.values():
            execute(f"DROP FUNCTION IF EXISTS {function}()")


_POSTGRES_REFUSE_TRUNCATE = """
CREATE OR REPLACE FUNCTION continust_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'continust: TRUNCATE on % is refused: the log is append-only', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""


def install_truncate_guard(vendor: str, execute: Execute) -> None:
    """Refuse TRUNCATE on the append-only tables (PostgreSQL; SQLite has no TRUNCATE)."""
    if vendor != "postgresql":
        return
    execute(_POSTGRES_REFUSE_TRUNCATE)
    for table in (*TABLES, BRANCH):
        execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION continust_refuse_truncate()"
        )


def remove_truncate_guard(vendor: str, execute: Execute) -> None:
    """Drop the truncate guard."""
    if vendor != "postgresql":
        return
    for table in (*TABLES, BRANCH):
        execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    execute("DROP FUNCTION IF EXISTS continust_refuse_truncate()")


def installing_truncate_guard(apps: object, schema_editor: object) -> None:
    """A migration step that installs the truncate guard."""
    install_truncate_guard(
        schema_editor.connection.vendor,  # type: ignore[attr-defined]
        _executor(schema_editor),
    )


def removing_truncate_guard(apps: object, schema_editor: object) -> None:
    """A migration step that drops the truncate guard."""
    remove_truncate_guard(
        schema_editor.connection.vendor,  # type: ignore[attr-defined]
        _executor(schema_editor),
    )

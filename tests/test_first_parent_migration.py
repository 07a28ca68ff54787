"""Migration 0019 moves each version's first parent from its link row onto the version."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from continust.audit.integrity import verify
from continust.graph.parents import parents_in_stream
from continust.log.store import fork, merge
from continust.models import Version, VersionParent
from tests.conftest import put

BEFORE = [("continust", "0018_tags")]


def export(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    call_command("export_jsonl", "--project", "acme", "-o", str(path), stdout=StringIO())
    return path.read_text()


def links() -> list[tuple[int, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT child_id, parent_id, "index" FROM continust_versionparent ORDER BY 1, 3'
        )
        return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_migration_0019_moves_first_parents_onto_versions(stream, tmp_path):
    (v1, _) = put(stream, {"a": 1}, {"a": 2})
    fork(stream, "b", v1)
    put(stream, {"b": 1}, {"b": 2}, branch="b")
    merged = merge(stream, "b", "main")
    put(stream, {"c": 1})
    parents = parents_in_stream(stream.pk)
    exported = export(tmp_path, "before.jsonl")
    # Only the merge's second parent is a link row; every other parent is a column.
    assert links() == [(merged.pk, parents[merged.pk][1], 1)]

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)  # the shape before: every parent a link row, index 0 first
    assert links() == [
        (child, parent, index)
        for child, ps in sorted(parents.items())
        for index, parent in enumerate(ps)
    ]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert links() == [(merged.pk, parents[merged.pk][1], 1)]
    assert dict(
        Version.objects.filter(first_parent__isnull=False).values_list("id", "first_parent_id")
    ) == {child: ps[0] for child, ps in parents.items()}
    assert Version.objects.filter(first_parent__isnull=True).count() == 1  # the root
    assert parents_in_stream(stream.pk) == parents
    assert verify().ok
    assert export(tmp_path, "after.jsonl") == exported
    # The triggers are back: the first parent is as append-only as the rest of the version.
    assert VersionParent.objects.count() == 1
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute(f"UPDATE continust_version SET first_parent_id = NULL WHERE id = {v1.pk}")

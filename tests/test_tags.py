"""Tags: immutable names for versions, unique per stream, recorded in the audit trail."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from continust.audit import trail
from continust.audit.tags import TAG_CREATED, TagExists, create_tag, tags_of
from continust.core.errors import AlreadyExists, AmbiguousName, InvalidName
from continust.log.store import fork
from continust.models import AuditRecord, Tag
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_tag_is_recorded_in_the_audit_stream(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    tag = create_tag(stream, "release-1", v1, actor="alice")
    assert tag.event.type == TAG_CREATED and tag.event.actor == "alice"
    assert tag.event.stream.name == trail.AUDIT_STREAM
    assert tag.event.payload == {
        "stream": "pricing",
        "tag": "release-1",
        "version": v1.pk,
        "digest": v1.digest,
    }
    assert AuditRecord.objects.filter(event=tag.event).exists()
    assert [t.name for t in tags_of(stream)] == ["release-1"]


def test_a_tag_name_is_unique_and_never_moves(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    create_tag(stream, "release-1", v1)
    with pytest.raises(TagExists, match="tags never move"):
        create_tag(stream, "release-1", v2)
    tag = Tag.objects.get()
    tag.version = v2
    with pytest.raises(TypeError):
        tag.save()
    with pytest.raises(TypeError):
        tag.delete()


def test_the_database_refuses_to_move_a_tag(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    tag = create_tag(stream, "release-1", v1)
    with (
        pytest.raises(DatabaseError, match="a tag never moves"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE continust_tag SET version_id = %s WHERE id = %s", [v2.pk, tag.pk])
    assert Tag.objects.get().version_id == v1.pk


@pytest.mark.parametrize("name", ["12", "v12", "a~1", "b^2", "c:d", "x..y", "has space", ""])
def test_it_refuses_names_revisions_could_not_tell_apart(stream, name):
    (v1,) = put(stream, {"a": 1})
    with pytest.raises((InvalidName, AmbiguousName)):
        create_tag(stream, name, v1)
    assert not Tag.objects.exists()


def test_a_tag_may_not_shadow_a_branch(stream):
    (v1,) = put(stream, {"a": 1})
    fork(stream, "side", v1)
    with pytest.raises(TagExists, match="has a branch 'side'"):
        create_tag(stream, "side", v1)


def test_the_cli_tags_and_lists(stream):
    v1, v2 = put(stream, {"a": 1}, {"a": 2})
    out = run("tag", "--project", "acme", "--stream", "pricing", "rc1", "main~1", "--json")
    assert json.loads(out)["version"] == v1.pk
    listed = json.loads(run("tag", "--project", "acme", "--stream", "pricing", "--json"))
    assert [(t["name"], t["version"]) for t in listed] == [("rc1", v1.pk)]
    with pytest.raises(CommandError, match="already has a tag 'rc1'"):
        run("tag", "--project", "acme", "--stream", "pricing", "rc1", "main")
    with pytest.raises(CommandError, match="name the version"):
        run("tag", "--project", "acme", "--stream", "pricing", "rc2")


def test_a_branch_may_not_take_a_tag_name(stream):
    (v1,) = put(stream, {"a": 1})
    create_tag(stream, "rc1", v1)
    with pytest.raises(AlreadyExists, match="has a tag 'rc1'"):
        fork(stream, "rc1", v1)


def test_the_cli_records_who_tags_it(stream):
    put(stream, {"a": 1})
    out = run(
        "tag", "--project", "acme", "--stream", "pricing", "rc1", "main", "--actor", "ana", "--json"
    )
    assert json.loads(out)["actor"] == "ana"
    tag = Tag.objects.get(stream=stream, name="rc1")
    assert (tag.actor, tag.event.actor) == ("ana", "ana")
    listed = run("tag", "--project", "acme", "--stream", "pricing", "--list")
    assert listed.startswith(f"rc1\tv{tag.version_id}\tana\t")
    # Without --actor, as revert: nobody named (the audit event says "").
    run("tag", "--project", "acme", "--stream", "pricing", "rc2", "main")
    assert Tag.objects.get(stream=stream, name="rc2").event.actor == ""

"""verify: recompute the chain, the states and the branch heads, and name every broken link."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from continust.audit.integrity import verify
from continust.log.projects import create_project, create_stream
from continust.log.store import fork, merge
from continust.models import Event
from tests.conftest import put

pytestmark = pytest.mark.django_db


def tamper(sql: str, table: str, operation: str = "update") -> None:
    """Run SQL with the append-only trigger of ``table`` out of the way, as an attacker would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Replica mode skips ordinary triggers: what a superuser bent on forgery could do.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
            cursor.execute(sql)


def run_verify(*args: str) -> tuple[str, CommandError | None]:
    """Run the verify command; return what it printed and the error it ended with."""
    out = StringIO()
    try:
        call_command("verify", *args, stdout=out)
    except CommandError as err:
        return out.getvalue(), err
    return out.getvalue(), None


def test_it_passes_an_intact_history(stream):
    (v1, _) = put(stream, {"a": 1}, {"a": 2})
    fork(stream, "b", v1)
    put(stream, {"b": 1}, branch="b")
    merge(stream, "b", "main")
    report = verify()
    assert report.ok and report.events == 4 and report.versions == 4


def test_it_names_a_tampered_payload(stream):
    put(stream, {"a": 1}, {"a": 2}, {"a": 3})
    second = Event.objects.get(stream=stream, seq=2)
    tamper(
        f"UPDATE continust_event SET payload = '{{\"a\": 99}}' WHERE position = {second.pk}",
        "continust_event",
    )
    report = verify()
    assert not report.ok
    assert f"event #2 ({second.id})" in report.broken.where
    assert "hash mismatch" in report.broken.reason


def test_it_names_a_tampered_state(stream):
    (v1, v2) = put(stream, {"a": 1}, {"a": 2})
    tamper(
        f"UPDATE continust_state SET data = '{{\"a\": 5}}' WHERE hash = '{v2.state_id}'",
        "continust_state",
    )
    report = verify()
    assert not report.ok and f"version {v2.pk}" in report.broken.where


def test_the_command_exits_1_on_a_break(stream):
    put(stream, {"a": 1}, {"a": 2})
    call_command("verify")
    tamper("UPDATE continust_event SET type = 'forged' WHERE seq = 1", "continust_event")
    with pytest.raises(CommandError, match="broken: acme/pricing: event #1") as caught:
        call_command("verify")
    assert caught.value.returncode == 1


def test_it_reports_every_broken_stream_not_only_the_first(project):
    streams = [create_stream(project, name) for name in ("a", "b", "c")]
    for stream in streams:
        put(stream, {"n": 1}, {"n": 2}, {"n": 3})
    for name, seq in (("a", 1), ("a", 3), ("c", 2)):
        tamper(
            f"UPDATE continust_event SET type = 'forged' WHERE seq = {seq} AND stream_id = "
            f"(SELECT id FROM continust_stream WHERE name = '{name}')",
            "continust_event",
        )
    report = verify(project)
    assert report.broken_streams == ["acme/a", "acme/c"]
    hash_breaks = [
        (b.stream, b.where.split(" (")[0], b.version)
        for b in report.breaks
        if "hash mismatch" in b.reason
    ]
    made = {(e.stream.name, e.seq): e.versions.get().pk for e in Event.objects.all()}
    assert hash_breaks == [
        ("a", "event #1", made["a", 1]),
        ("a", "event #3", made["a", 3]),
        ("c", "event #2", made["c", 2]),
    ]
    assert report.broken.stream == "a"  # the first break, as before
    out, error = run_verify("--project", "acme")
    assert error is not None and error.returncode == 1
    assert "acme/c: event #2" in out and "acme/a: event #3" in out


@pytest.mark.parametrize("which", ["first parent", "a merge's second parent"])
def test_a_corrupted_parent_link_names_project_stream_and_version(project, stream, which):
    other = create_stream(project, "other")
    (elsewhere,) = put(other, {"x": 1})
    if which == "first parent":
        (_, v2) = put(stream, {"a": 1}, {"a": 2})
        tamper(
            f"UPDATE continust_version SET first_parent_id = {elsewhere.pk} WHERE id = {v2.pk}",
            "continust_version",
        )
    else:
        (v1,) = put(stream, {"a": 1})
        fork(stream, "b", v1)
        put(stream, {"b": 1}, branch="b")
        v2 = merge(stream, "b", "main")
        tamper(
            f"UPDATE continust_versionparent SET parent_id = {elsewhere.pk} "
            f"WHERE child_id = {v2.pk}",
            "continust_versionparent",
        )
    out, error = run_verify("--json")
    assert error is not None and error.returncode == 1
    report = json.loads(out)
    assert report["ok"] is False and report["broken_streams"] == ["acme/pricing"]
    assert report["broken"]["project"] == "acme" and report["broken"]["stream"] == "pricing"
    assert report["broken"]["version"] == v2.pk
    _, error = run_verify()
    assert f"acme/pricing: version {v2.pk}" in str(error)


def test_json_prints_a_report_on_every_failure(stream):
    put(stream, {"a": 1})
    out, error = run_verify("--json", "--project", "nobody")
    assert error is not None
    assert json.loads(out) == {"ok": False, "error": str(error)}
    out, error = run_verify("--json")
    assert error is None and json.loads(out)["ok"] is True


def test_a_branch_head_moved_without_a_recorded_move_is_named(stream):
    (v1, _, v3) = put(stream, {"a": 1}, {"a": 2}, {"a": 3})
    tamper(
        f"UPDATE continust_branch SET head_id = {v1.pk} WHERE stream_id = {stream.pk}",
        "continust_branch",
    )
    report = verify()
    assert [(b.where, b.version) for b in report.breaks] == [("branch 'main'", v1.pk)]
    assert f"v{v3.pk}" in report.broken.reason


def test_a_broken_chain_of_moves_is_named(stream):
    ((v1,), (v2,), (v3,)) = (put(stream, {"a": n}) for n in (1, 2, 3))
    # The second move (v1 -> v2) rewritten to start from v3: the moves no longer link up.
    tamper(
        f"UPDATE continust_branchmove SET old_head_id = {v3.pk} WHERE new_head_id = {v2.pk}",
        "continust_branchmove",
    )
    report = verify()
    assert not report.ok
    assert "move 2 starts at" in report.broken.reason and report.broken.version == v2.pk


def test_it_verifies_streams_of_every_project_past_a_break(alice, project, stream):
    put(stream, {"a": 1})
    later = create_stream(create_project("zeta", "Zeta", owner=alice), "ledger")
    put(later, {"b": 1})
    tamper("UPDATE continust_event SET actor = 'mallory'", "continust_event")
    assert verify().broken_streams == ["acme/pricing", "zeta/ledger"]


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE continust_event CASCADE",
        "TRUNCATE continust_stream CASCADE",
        "TRUNCATE continust_project CASCADE",
        "TRUNCATE continust_branchmove, continust_versionparent",
        "TRUNCATE continust_state",
    ],
)
def test_postgresql_refuses_to_truncate_the_log(stream, statement):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE meets the row triggers")
    put(stream, {"a": 1}, {"a": 2})
    with connection.cursor() as cursor:
        # The test's own transaction holds deferred key checks, which TRUNCATE waits for.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with (
        pytest.raises(DatabaseError, match="TRUNCATE on continust_.* is refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert Event.objects.filter(stream=stream).count() == 2 and verify().ok


def test_an_event_moved_to_another_project_is_named(alice, project, stream):
    other = create_project("globex", "Globex", owner=alice)
    (version,) = put(stream, {"a": 1})
    # The hash does not cover the project; the event would now answer the other
    # tenant's look-ups by id.
    tamper(
        f"UPDATE continust_event SET project_id = {other.pk} WHERE position = {version.event_id}",
        "continust_event",
    )
    report = verify(project)
    assert not report.ok
    assert report.broken.where.startswith("event #1")
    assert "project" in report.broken.reason


def test_verifying_reads_states_by_the_chunk_not_one_query_per_version(project):
    from django.test.utils import CaptureQueriesContext

    from continust.audit import integrity
    from continust.audit.integrity import Report, verify_stream

    def queries(count: int) -> int:
        stream = create_stream(project, f"s{count}")
        put(stream, *({"n": n} for n in range(count)))
        with CaptureQueriesContext(connection) as seen:
            report = Report()
            assert verify_stream(stream, report) == []
        assert report.versions == count
        return len(seen.captured_queries)

    few = queries(10)
    # Twice the chunk plus some: two more state reads, never one per version.
    assert queries(2 * integrity.STATE_CHUNK + 10) <= few + 4

"""Erasure that keeps the proof: personal values sealed per data subject, erased by
destroying the subject's key, while verify, folds and diffs keep working."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from continust.audit.erasure import affected_events, erase, set_personal
from continust.audit.integrity import verify
from continust.core.errors import AlreadyErased, InvalidEvent, NotFound, SubjectErased
from continust.log.sealing import ERASED, is_sealed
from continust.log.states import state_of
from continust.log.store import NewEvent, append
from continust.log.subjects import reveal, schema_marks
from continust.models import AuditRecord, Event, Stream, SubjectKey


@pytest.fixture
def customers(project: Any, alice: Any) -> Stream:
    from continust.log.projects import create_stream

    stream = create_stream(project, "customers")
    return set_personal(stream, "customer", actor="alice")


def _append(stream: Stream, payload: dict[str, Any]) -> Any:
    return append(stream, [NewEvent(type="customer.updated", payload=payload)]).versions[0]


def _raw_payload(event_id: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT payload FROM {Event._meta.db_table} WHERE id = %s",
            [event_id if connection.vendor == "postgresql" else event_id.hex],
        )
        value = cursor.fetchone()[0]
    return value if isinstance(value, str) else json.dumps(value)


def test_personal_values_are_stored_sealed(customers: Stream) -> None:
    version = _append(customers, {"customer": "c-1", "email": "ann@example.com", "age": 41})
    raw = _raw_payload(version.event.id)
    assert "ann@example.com" not in raw
    # Not as a plain JSON number (the ciphertext is text and may hold the digits 41).
    assert ":41" not in raw.replace(" ", "")
    stored = Event.objects.get(pk=version.event.pk).payload
    assert stored["customer"] == "c-1"
    assert is_sealed(stored["email"]) and is_sealed(stored["age"])
    assert is_sealed(state_of(version)["email"])


def test_readers_see_the_plain_values(customers: Stream) -> None:
    _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    version = _append(customers, {"customer": "c-1", "name": "Ann"})
    assert reveal(customers.project_id, state_of(version)) == {
        "customer": "c-1",
        "email": "ann@example.com",
        "name": "Ann",
    }


def test_erasure_redacts_and_verify_still_passes(customers: Stream, project: Any) -> None:
    first = _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    _append(customers, {"customer": "c-2", "email": "bo@example.com"})
    head = _append(customers, {"customer": "c-1", "name": "Ann"})
    assert verify(project).ok
    report = erase(project, "c-1", actor="alice", reason="GDPR request 7")
    assert [e.seq for e in report.events] == [first.event.seq, head.event.seq]
    # The state holds c-2's email (the last one set) and c-1's name.
    assert reveal(project.pk, state_of(head)) == {
        "customer": "c-1",
        "email": "bo@example.com",
        "name": ERASED,
    }
    assert reveal(project.pk, state_of(first)) == {"customer": "c-1", "email": ERASED}
    assert verify(project).ok
    row = SubjectKey.objects.get(project=project, subject="c-1")
    assert row.key is None and row.erased_by == "alice"
    audit = AuditRecord.objects.select_related("event").get(event__type="subject.erased")
    assert audit.event.actor == "alice"
    assert audit.event.payload["reason"] == "GDPR request 7"


def test_erasing_twice_or_an_unknown_subject_changes_nothing(
    customers: Stream, project: Any
) -> None:
    _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    erase(project, "c-1", actor="alice", reason="asked")
    records = AuditRecord.objects.count()
    with pytest.raises(AlreadyErased):
        erase(project, "c-1", actor="alice", reason="again")
    with pytest.raises(NotFound):
        erase(project, "nobody", actor="alice", reason="asked")
    assert AuditRecord.objects.count() == records


def test_an_erased_subject_records_no_more_personal_data(customers: Stream, project: Any) -> None:
    _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    erase(project, "c-1", actor="alice", reason="asked")
    count = Event.objects.count()
    with pytest.raises(SubjectErased):
        _append(customers, {"customer": "c-1", "email": "new@example.com"})
    assert Event.objects.count() == count


def test_an_encrypted_stream_needs_the_subject(customers: Stream) -> None:
    with pytest.raises(InvalidEvent, match="customer"):
        _append(customers, {"email": "ann@example.com"})


def test_a_retried_append_is_recognised(customers: Stream) -> None:
    import uuid

    event = NewEvent(
        type="customer.updated", payload={"customer": "c-1", "email": "a@x"}, id=uuid.uuid4()
    )
    first = append(customers, [event])
    again = append(customers, [event])
    assert not again.created
    assert again.versions[0].pk == first.versions[0].pk


def test_affected_events_skip_other_subjects(customers: Stream, project: Any) -> None:
    _append(customers, {"customer": "c-2", "email": "bo@example.com"})
    assert affected_events(project, "c-1") == ()


SIGNED_UP = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "user": {"type": "string", "x-subject": True},
        "email": {"type": "string", "x-personal": True},
        "plan": {"type": "string"},
    },
    "required": ["user", "email"],
}


def test_a_schema_marks_personal_properties(project: Any, stream: Stream) -> None:
    from continust.audit.event_types import register

    register(project, "user.signed_up", SIGNED_UP, actor="alice")
    project.refresh_from_db()
    stream.project = project
    version = append(
        stream,
        [
            NewEvent(
                type="user.signed_up", payload={"user": "u-7", "email": "u@x.org", "plan": "pro"}
            )
        ],
    ).versions[0]
    stored = Event.objects.get(pk=version.event.pk).payload
    assert is_sealed(stored["email"]) and stored["plan"] == "pro" and stored["user"] == "u-7"
    assert "u@x.org" not in _raw_payload(version.event.id)
    assert reveal(project.pk, stored)["email"] == "u@x.org"
    erase(project, "u-7", actor="alice", reason="asked")
    assert reveal(project.pk, state_of(version)) == {
        "user": "u-7",
        "email": ERASED,
        "plan": "pro",
    }
    assert verify(project).ok


def test_a_schema_with_personal_properties_needs_one_subject(project: Any) -> None:
    from continust.audit.event_types import register
    from continust.schemas.registry import InvalidSchema

    schema = {
        **SIGNED_UP,
        "properties": {"email": {"type": "string", "x-personal": True}},
        "required": ["email"],
    }
    with pytest.raises(InvalidSchema, match="x-subject"):
        register(project, "user.signed_up", schema, actor="alice")
    with pytest.raises(InvalidEvent, match="x-subject"):
        schema_marks(schema, "user.signed_up")


def test_a_master_key_wraps_the_subject_keys(customers: Stream, settings: Any) -> None:
    import base64
    import os

    from django.core.exceptions import ImproperlyConfigured

    settings.CONTINUST_MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    version = _append(customers, {"customer": "c-9", "email": "m@x.org"})
    row = SubjectKey.objects.get(subject="c-9")
    assert row.wrapped and len(bytes(row.key)) == 12 + 32 + 16
    assert reveal(customers.project_id, state_of(version))["email"] == "m@x.org"
    settings.CONTINUST_MASTER_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="CONTINUST_MASTER_KEY"):
        reveal(customers.project_id, state_of(version))


def test_a_forged_sealed_value_reads_unreadable(customers: Stream, project: Any) -> None:
    from continust.log.subjects import UNREADABLE

    _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    forged = {"$sealed": 1, "subject": "c-1", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}
    assert reveal(project.pk, {"x": forged}) == {"x": UNREADABLE}


def test_blame_and_diff_read_revealed_values(customers: Stream, project: Any) -> None:
    from continust.audit.blame import blame
    from continust.documents.diff import diff
    from continust.log.subjects import readable_state

    first = _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    _append(customers, {"customer": "c-1", "email": "ann@example.com"})  # sealed anew
    head = _append(customers, {"customer": "c-1", "name": "Ann"})
    found = blame(customers, head, "/email")
    assert found.value == "ann@example.com"
    assert found.last.version.pk == first.pk  # the same plain value, sealed twice
    assert [c.to_dict() for c in diff(readable_state(first), readable_state(head))] == [
        {"op": "add", "path": "/name", "new": "Ann"}
    ]
    erase(project, "c-1", actor="alice", reason="asked")
    assert blame(customers, head, "/email").value == ERASED


def test_an_export_is_sealed_and_a_revealed_one_is_redacted(
    customers: Stream, project: Any
) -> None:
    from continust.interchange.jsonl import export_lines

    _append(customers, {"customer": "c-1", "email": "ann@example.com"})
    assert "ann@example.com" not in "".join(export_lines(project, ["customers"]))
    assert "ann@example.com" in "".join(export_lines(project, ["customers"], reveal=True))
    erase(project, "c-1", actor="alice", reason="asked")
    revealed = "".join(export_lines(project, ["customers"], reveal=True))
    assert "ann@example.com" not in revealed and '"email":"[erased]"' in revealed


def test_sealed_values_are_whole_to_diffs_patches_and_merges() -> None:
    from continust.documents.diff import apply_merge_patch, diff, merge_patch, three_way_merge
    from continust.log.sealing import new_key, seal

    key = new_key()
    a, b, c = (seal(v, key=key, project=1, subject="s") for v in ("x", "y", "z"))
    assert [ch.to_dict() for ch in diff({"e": a}, {"e": b})] == [
        {"op": "replace", "path": "/e", "old": a, "new": b}
    ]
    assert merge_patch({"e": a}, {"e": b}) == {"e": b}
    assert apply_merge_patch({"e": {"plain": 1}}, {"e": a}) == {"e": a}
    assert apply_merge_patch({"e": a}, {"e": {"plain": 1}}) == {"e": {"plain": 1}}
    merged = three_way_merge({"e": a}, {"e": b}, {"e": c})
    assert [conflict.path for conflict in merged.conflicts] == ["/e"]


def test_a_revert_of_a_personal_value_restores_the_sealed_one(customers: Stream) -> None:
    from continust.log.revert import revert
    from continust.log.subjects import readable_state

    _append(customers, {"customer": "c-1", "email": "old@example.com"})
    changed = _append(customers, {"customer": "c-1", "email": "new@example.com"})
    from continust.log.revert import plan_revert

    shown = plan_revert(customers, changed).as_dict()
    assert shown["payload"] == {"email": "old@example.com"}
    assert shown["changes"][0]["new"] == "old@example.com"
    head = revert(customers, changed, actor="alice").versions[-1]
    assert readable_state(head)["email"] == "old@example.com"


def test_projections_read_revealed_values_and_an_erasure_rebuilds_them(
    customers: Stream, project: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from continust.projections import control, registry, tables
    from continust.projections.runner import Outcome, run_projection

    settings.CONTINUST_PROJECTIONS = ["personal_log=tests.projections_support.PersonalLog"]
    registry.reload()
    try:
        _append(customers, {"customer": "c-1", "email": "ann@example.com"})
        row = control.get_projection(project, "personal_log")

        def emails() -> list[str]:
            row.refresh_from_db()
            table = tables.names(row, registry.get("personal_log"), row.generation)["emails"]
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT email FROM {table}")
                return [email for (email,) in cursor.fetchall()]

        assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
        assert emails() == ["ann@example.com"]
        with django_capture_on_commit_callbacks(execute=True):
            erase(project, "c-1", actor="alice", reason="asked")
        row.refresh_from_db()
        assert row.rebuild_generation > 0
        assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
        assert emails() == [ERASED]
    finally:
        settings.CONTINUST_PROJECTIONS = []
        registry.reload()

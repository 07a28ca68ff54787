"""Audit reports: what they state, their pinned export, and a third party's check of it."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest

from continust.audit import members, reports, reviews, trail
from continust.log.store import NewEvent, append
from tests.conftest import put
from tests.thirdparty import check_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(stream):
    """main: v1 ─ v2 ─ v3, reviewed from v1 to v3: a comment, a correction, two decisions."""
    v1, v2, v3 = put(stream, {"price": 10}, {"price": 12, "currency": "EUR"}, {"price": 11})
    review = reviews.open_review(stream, base=v1, head=v3, actor="carol", title="Prices")
    said = reviews.comment(
        review, actor="bob", body="Too high?", target=reviews.Target("path", path="/price")
    )
    reviews.correct(review, actor="bob", corrects=said.id, body="Too low?")
    reviews.decide(review, actor="bob", decision=reviews.REQUEST_CHANGES, note="currency")
    reviews.decide(review, actor="alice", decision=reviews.APPROVE, note="fine")
    return review


def export_bytes(project, integrity):
    return "".join(reports.pinned_export(project, integrity.pins)).encode("utf-8")


def test_a_review_report_states_who_changed_what_and_who_decided(reviewed, stream):
    report = reports.review_report(reviewed, generated_by="carol")
    data = report.as_dict()
    assert [c["event"]["type"] for c in data["changes"]] == ["set", "set"]
    assert data["changes"][0]["changes"] == [
        {"op": "replace", "path": "/price", "old": 10, "new": 12},
        {"op": "add", "path": "/currency", "new": "EUR"},
    ]
    (review,) = data["reviews"]
    assert review["status"] == reviews.CHANGES_REQUESTED
    assert {a: d["payload"]["decision"] for a, d in review["decisions"].items()} == {
        "bob": reviews.REQUEST_CHANGES,
        "alice": reviews.APPROVE,
    }
    assert [e["type"] for e in review["events"]] == [
        reviews.OPENED,
        reviews.COMMENTED,
        reviews.CORRECTED,
        reviews.DECIDED,
        reviews.DECIDED,
    ]
    assert data["report"]["generated_by"] == "carol"


def test_its_proof_pins_every_chain_head_and_digests_the_export(reviewed, project, stream):
    report = reports.review_report(reviewed, generated_by="carol")
    integrity = report.integrity
    assert integrity.ok
    audit_stream = trail.audit_stream(project)
    stream.refresh_from_db()
    assert {p.label: p.head for p in integrity.pins} == {
        "acme/pricing": stream.last_hash,
        "acme/_audit": audit_stream.last_hash,
    }
    body = export_bytes(project, integrity)
    assert hashlib.sha256(body).hexdigest() == integrity.export_sha256
    assert len(body) == integrity.export_bytes


def test_the_pinned_export_never_changes(reviewed, project, stream):
    integrity = reports.review_report(reviewed, generated_by="carol").integrity
    put(stream, {"price": 99})
    reviews.comment(reviewed, actor="bob", body="later")
    again = reports.parse_pins(project, [p.token for p in integrity.pins])
    assert again == integrity.pins
    assert hashlib.sha256(export_bytes(project, integrity)).hexdigest() == (integrity.export_sha256)


def test_a_third_party_recomputes_the_heads_from_the_export(reviewed, project, tmp_path):
    report = reports.review_report(reviewed, generated_by="carol")
    body = export_bytes(project, report.integrity)
    checked = check_export(body, project.slug, tmp_path / "good")
    assert checked["sha256"] == report.integrity.export_sha256
    assert checked["ok"] is True
    assert checked["heads"] == {p.label: p.head for p in report.integrity.pins}
    forged = body.replace(b"Too low?", b"Fine by me")
    assert b"Fine by me" in forged
    refused = check_export(forged, project.slug, tmp_path / "forged")
    assert "does not hash" in refused["import_error"]


def test_the_csv_has_a_row_per_changed_path_and_never_a_formula(reviewed):
    reviews.comment(reviewed, actor="bob", body='=HYPERLINK("http://evil")')
    text = reports.review_report(reviewed, generated_by="carol").csv_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    changes = [r for r in rows if r["kind"] == "change"]
    assert [(r["path"], r["op"]) for r in changes] == [
        ("/price", "replace"),
        ("/currency", "add"),
        ("/price", "replace"),
    ]
    (formula,) = [r for r in rows if "evil" in r["text"]]
    assert formula["text"] == '\'=HYPERLINK("http://evil")'
    assert not any(value.startswith(("=", "+", "@")) for r in rows for value in r.values())
    assert {r["kind"] for r in rows} >= {"change", reviews.COMMENTED, reviews.DECIDED, "chain"}


def test_a_time_range_report_covers_what_happened_in_the_range(project, stream, alice, bob):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for day in range(4):
        append(
            stream,
            [
                NewEvent(
                    type="set",
                    payload={"day": day},
                    actor="ann",
                    timestamp=start + timedelta(days=day),
                )
            ],
        )
    members.set_role(project, project.memberships.get(user=bob).pk, "reviewer", actor="alice")
    report = reports.range_report(
        project,
        since=start + timedelta(days=1),
        until=start + timedelta(days=3),
        generated_by="alice",
    )
    assert [row.version.event.payload for row in report.rows] == [{"day": 1}, {"day": 2}]
    assert report.integrity.ok
    assert {p.name for p in report.integrity.pins} == {"pricing", trail.AUDIT_STREAM}
    assert report.records == []  # the role change happened now, outside the range
    everything = reports.range_report(project, since=None, until=None, generated_by="alice")
    assert [e.type for e in everything.records] == [members.ROLE_CHANGED]
    assert len(everything.rows) == 4


def test_pins_are_checked(project, stream):
    from continust.core.errors import InvalidEvent, NotFound
    from continust.log.projects import create_project, create_stream

    put(stream, {"a": 1})
    with pytest.raises(InvalidEvent, match="asks for more"):
        reports.parse_pins(project, [f"{stream.pk}.2.1"])
    with pytest.raises(InvalidEvent):
        reports.parse_pins(project, ["1.x.2"])
    foreign = create_stream(create_project("other"), "s")
    with pytest.raises(NotFound):
        reports.parse_pins(project, [f"{foreign.pk}.0.0"])

"""The reviews and blame commands: the explorer's review actions and blame from a shell."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.log.store import fork
from continust.models import Review
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def reviews(*args: str) -> str:
    return run("reviews", "--project", "acme", *args)


@pytest.fixture
def history(stream):
    (v1,) = put(stream, {"pro": 29})
    fork(stream, "sale", v1)
    v2, v3 = put(stream, {"pro": 25}, {"discount": 5}, branch="sale")
    return v1, v2, v3


def test_open_comment_check_approve_and_report(history, tmp_path):
    opened = json.loads(
        reviews("open", "--stream", "pricing", "--branch", "sale", "--actor", "alice", "--json")
    )
    review = str(opened["id"])
    assert opened["status"] == "open"
    assert [c["path"] for c in opened["checklist"]] == ["/pro", "/discount"]
    said = json.loads(
        reviews(
            "comment", review, "--body", "Why 25?", "--path", "/pro", "--actor", "bob", "--json"
        )
    )
    reviews("comment", review, "--body", "Summer.", "--reply-to", said["id"], "--actor", "alice")
    with pytest.raises(CommandError, match="someone else"):
        reviews("approve", review, "--actor", "alice")
    with pytest.raises(CommandError, match="not ticked"):
        reviews("approve", review, "--actor", "bob")
    reviews("check", review, "--path", "/pro", "--actor", "bob")
    out = reviews("approve", review, "--note", "discount waived", "--actor", "bob")
    assert "it is approved" in out
    shown = reviews("show", review)
    assert "[x] /pro" in shown and "[ ] /discount" in shown
    assert "bob on path:/pro" in shown and "  - alice" in shown
    listed = reviews("list")
    assert listed.split()[:2] == [review, "approved"]
    path = tmp_path / "report.json"
    reviews("report", review, "-o", str(path))
    report = json.loads(path.read_text())
    assert report["report"]["scope"]["review"] == int(review)
    assert report["integrity"]["verify"]["ok"] is True
    assert reviews("report", review, "--format", "csv").startswith("kind,time,actor")


def test_open_a_range_and_refuse_bad_input(history):
    v1, _, v3 = history
    opened = json.loads(
        reviews(
            "open",
            "--stream",
            "pricing",
            "--head",
            str(v3.pk),
            "--base",
            str(v1.pk),
            "--actor",
            "alice",
            "--json",
        )
    )
    assert opened["base"] == v1.pk and opened["head"] == v3.pk
    with pytest.raises(CommandError, match="needs --actor"):
        reviews("open", "--stream", "pricing", "--branch", "sale")
    with pytest.raises(CommandError, match="nothing to review"):
        reviews("open", "--stream", "pricing", "--head", "main", "--base", "main", "--actor", "a")
    with pytest.raises(CommandError, match="has no review 999"):
        reviews("show", "999")
    with pytest.raises(CommandError, match="one of --path, --on-version or --event"):
        reviews(
            "comment",
            str(opened["id"]),
            "--body",
            "x",
            "--path",
            "/pro",
            "--on-version",
            str(v1.pk),
            "--actor",
            "bob",
        )
    with pytest.raises(CommandError, match="no version"):
        reviews(
            "comment", str(opened["id"]), "--body", "x", "--on-version", "999999", "--actor", "bob"
        )
    assert Review.objects.count() == 1


def test_blame_names_each_change_of_a_path(history):
    v1, v2, _ = history
    out = run("blame", "--project", "acme", "--stream", "pricing", "sale", "--path", "/pro")
    lines = out.splitlines()
    assert lines[0] == f"/pro = 25 at version {history[2].pk}"
    assert lines[1].startswith(f"v{v2.pk} ") and lines[1].endswith("29 -> 25")
    assert lines[2].startswith(f"v{v1.pk} ") and lines[2].endswith("(absent) -> 29")
    data = json.loads(
        run("blame", "--project", "acme", "--stream", "pricing", "--path", "/pro", "--json")
    )
    assert [c["version"] for c in data["changes"]] == [v1.pk] and data["complete"] is True
    with pytest.raises(CommandError, match="has nothing at"):
        run("blame", "--project", "acme", "--stream", "pricing", "--path", "/nothing")
    with pytest.raises(CommandError, match="not a JSON Pointer"):
        run("blame", "--project", "acme", "--stream", "pricing", "--path", "pro")

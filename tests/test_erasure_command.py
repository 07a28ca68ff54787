"""manage.py personal and erase: set, erase with its report, --json, --dry-run, and
one-line errors that change nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from continust.models import Event, Stream, SubjectKey
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(command, *args):
    out = StringIO()
    call_command(command, "--project", "acme", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def customers(project):
    from continust.log.projects import create_stream

    create_stream(project, "customers")
    run("personal", "--stream", "customers", "set", "--subject-member", "customer")
    stream = Stream.objects.get(name="customers")
    put(stream, {"customer": "c-1", "email": "ann@example.com"}, {"customer": "c-2", "email": "b"})
    return stream


def test_personal_shows_and_sets_the_setting(customers):
    assert "named by member 'customer'" in run("personal", "--stream", "customers")
    run("personal", "--stream", "customers", "off", "--actor", "alice")
    assert Stream.objects.get(name="customers").personal is None
    assert Event.objects.filter(type="stream.personal.set").count() == 2


def test_erase_reports_the_events_and_a_dry_run_changes_nothing(customers):
    dry = json.loads(run("erase", "--subject", "c-1", "--reason", "x", "--dry-run", "--json"))
    assert [e["seq"] for e in dry["events"]] == [1]
    assert SubjectKey.objects.get(subject="c-1").key is not None
    report = json.loads(
        run("erase", "--subject", "c-1", "--reason", "GDPR 7", "--actor", "alice", "--json")
    )
    assert report["events"][0]["stream"] == "customers" and report["erased_by"] == "alice"
    assert SubjectKey.objects.get(subject="c-1").key is None
    state = json.loads(run("state", "--stream", "customers", "main", "--json"))["state"]
    assert state["email"] == "b"  # c-2's, set last
    first = json.loads(run("state", "--stream", "customers", "main~1", "--json"))["state"]
    assert first == {"customer": "c-1", "email": "[erased]"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subject", "nobody", "--reason", "x"], "has no data subject 'nobody'"),
        (["--subject", "c-1", "--reason", "  "], "needs a reason"),
        (["--subject", "", "--reason", "x"], "data subject is a non-empty string"),
        (["--subject", "c-1"], "--reason"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(customers, args, message):
    with pytest.raises(CommandError, match=message):
        run("erase", *args)
    assert SubjectKey.objects.get(subject="c-1").key is not None
    assert not Event.objects.filter(type="subject.erased").exists()


def test_erasing_twice_is_refused(customers):
    run("erase", "--subject", "c-1", "--reason", "x")
    with pytest.raises(CommandError, match="already erased"):
        run("erase", "--subject", "c-1", "--reason", "x")
    assert Event.objects.filter(type="subject.erased").count() == 1


def test_personal_set_needs_a_member(customers):
    with pytest.raises(CommandError, match="--subject-member"):
        run("personal", "--stream", "customers", "set")
    with pytest.raises(CommandError, match="goes with set"):
        run("personal", "--stream", "customers", "off", "--subject-member", "x")
    assert Stream.objects.get(name="customers").personal == {"subject": "customer"}

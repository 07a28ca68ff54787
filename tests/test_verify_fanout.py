"""Verifying a project across workers: one part per stream, one report at the end."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.audit import fanout
from continust.audit.integrity import verify
from continust.log.projects import create_stream
from continust.models import OutboxMessage, Verification, VerificationPart
from tests.conftest import put
from tests.test_integrity import tamper


def fill(project, streams=3, events=20):
    made = [create_stream(project, f"s{i}") for i in range(streams)]
    for stream in made:
        put(stream, *({"n": n} for n in range(events)))
    return made


@pytest.mark.django_db
def test_parts_run_in_any_order_and_twice_and_report_as_verify_does(project):
    fill(project)
    verification = fanout.start(project, actor="alice")
    parts = list(VerificationPart.objects.filter(verification=verification))
    assert len(parts) == 3 == verification.streams
    # One task message per part, recorded with the verification.
    assert OutboxMessage.objects.filter(task=fanout.TASK).count() == 3
    assert fanout.progress(verification).line() == "0/3 streams verified"
    assert fanout.run_part(parts[2].pk) == "verified"
    assert fanout.run_part(parts[2].pk) == "done already"  # a second delivery
    assert fanout.run_part(parts[0].pk) == "verified"
    verification.refresh_from_db()
    assert verification.finished_at is None
    assert fanout.progress(verification).line() == "2/3 streams verified"
    fanout.run_part(parts[1].pk)
    verification.refresh_from_db()
    assert verification.finished_at is not None
    assert fanout.report(verification).as_dict() == verify(project).as_dict()


@pytest.mark.django_db
def test_a_broken_stream_is_named_and_the_others_still_verified(project):
    streams = fill(project)
    tamper(
        f"UPDATE continust_event SET type = 'forged' WHERE seq = 3 AND stream_id = {streams[1].pk}",
        "continust_event",
    )
    verification = fanout.start(project)
    for part in VerificationPart.objects.filter(verification=verification):
        fanout.run_part(part.pk)
    report = fanout.report(verification)
    assert report.broken_streams == [f"acme/{streams[1].name}"] == verify(project).broken_streams
    assert report.streams == 3
    assert fanout.progress(verification).line() == "3/3 streams verified, 1 broken"


@pytest.mark.django_db
def test_a_part_that_fails_is_recorded_and_the_verification_still_ends(project, monkeypatch):
    fill(project, streams=2, events=3)
    verification = fanout.start(project)
    parts = list(VerificationPart.objects.filter(verification=verification))

    def fails(stream, report=None):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(fanout, "verify_stream", fails)
    assert fanout.run_part(parts[0].pk) == "failed"
    monkeypatch.undo()
    fanout.run_part(parts[1].pk)
    verification.refresh_from_db()
    assert verification.finished_at is not None
    report = fanout.report(verification)
    assert not report.ok and report.broken_streams == ["acme/s0"]
    assert str(report.broken) == (
        "acme/s0: stream: could not be verified: RuntimeError: the database went away"
    )


@pytest.mark.django_db
def test_an_empty_project_is_verified_at_once(project):
    verification = fanout.start(project)
    assert verification.finished_at is not None and fanout.report(verification).ok


@pytest.mark.django_db
def test_fan_out_needs_a_whole_project(project):
    for args in (["--fan-out"], ["--fan-out", "--project", "acme", "--stream", "x"]):
        with pytest.raises(CommandError, match="--fan-out"):
            call_command("verify", *args, stdout=StringIO())
    assert not Verification.objects.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_workers_verify_a_project_side_by_side(project, start_worker):
    fill(project, streams=4, events=30)
    start_worker()
    start_worker()
    out, err = StringIO(), StringIO()
    call_command("verify", "--project", "acme", "--fan-out", "--json", stdout=out, stderr=err)
    report = json.loads(out.getvalue())
    assert report == verify(project).as_dict()
    assert report["ok"] and report["streams"] == 4 and report["events"] == 120
    workers = set(VerificationPart.objects.values_list("worker", flat=True))
    assert all(workers) and len(workers) >= 1

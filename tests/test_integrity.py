"""verify: recompute the chain and the states, and name the first broken link."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from continust.integrity import verify
from continust.models import Event
from continust.store import fork, merge
from tests.conftest import put

pytestmark = pytest.mark.django_db


def tamper(sql: str, table: str) -> None:
    """Run SQL with the append-only trigger of ``table`` out of the way, as an attacker would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Replica mode skips ordinary triggers: what a superuser bent on forgery could do.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql)
            cursor.execute("SET session_replication_role = DEFAULT")
        else:
            cursor.execute(f"DROP TRIGGER {table}_no_update")
            cursor.execute(sql)


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
    tamper(f"UPDATE continust_event SET payload = '{{\"a\": 99}}' WHERE position = {second.pk}",
           "continust_event")
    report = verify()
    assert not report.ok
    assert f"event #2 ({second.id})" in report.broken.where
    assert "hash mismatch" in report.broken.reason


def test_it_names_a_tampered_state(stream):
    (v1, v2) = put(stream, {"a": 1}, {"a": 2})
    tamper(f"UPDATE continust_state SET data = '{{\"a\": 5}}' WHERE hash = '{v2.state_id}'",
           "continust_state")
    report = verify()
    assert not report.ok and f"version {v2.pk}" in report.broken.where


def test_the_command_exits_1_on_a_break(stream):
    put(stream, {"a": 1}, {"a": 2})
    call_command("verify")
    tamper("UPDATE continust_event SET type = 'forged' WHERE seq = 1", "continust_event")
    with pytest.raises(CommandError, match="broken: acme/pricing: event #1") as caught:
        call_command("verify")
    assert caught.value.returncode == 1

"""Inputs at the edges of what PostgreSQL and Python take: never a 500."""

from __future__ import annotations

import json

import pytest

from continust.models import Event
from tests.api.conftest import event, events_path

pytestmark = pytest.mark.django_db

STREAM = "/projects/acme/streams/pricing"
HUGE = 10**30


def test_numbers_beyond_bigint_are_400_and_the_largest_ones_not_found(alice_api, stream):
    alice_api.post(events_path(), {"events": [event({"a": 1})]})
    assert alice_api.get(f"{STREAM}/versions/{HUGE}").status_code == 400
    assert alice_api.get(f"{STREAM}/versions/{2**63 - 1}").status_code == 404
    assert alice_api.get(f"{STREAM}/resolve", ref=str(HUGE)).status_code == 404  # a key, maybe
    assert alice_api.get(events_path(), after=str(HUGE)).status_code == 400
    page = alice_api.get(events_path(), after="9" * 18)
    assert page.status_code == 200 and page.json()["items"] == []


def test_an_expected_head_beyond_bigint_is_400(alice_api, stream):
    response = alice_api.post(events_path(), {"events": [event({"a": 1})], "expected_head": HUGE})
    assert response.status_code == 400
    response = alice_api.post(
        events_path(), {"events": [event({"a": 1})], "expected_head": 2**63 - 1}
    )
    assert response.status_code == 409


def test_deeply_nested_payloads_are_stored_or_refused_cleanly(alice_api, stream):
    deep = "[" * 500 + "]" * 500
    raw = '{"events": [{"type": "t", "payload": {"x": ' + deep + "}}]}"
    assert alice_api.post(events_path(), raw=raw).status_code == 201
    deeper = "[" * 100_000 + "]" * 100_000
    raw = '{"events": [{"type": "t", "payload": {"x": ' + deeper + "}}]}"
    assert alice_api.post(events_path(), raw=raw).status_code == 400
    assert Event.objects.count() == 1


def test_big_integers_and_unicode_round_trip(alice_api, stream):
    payload = {"big": 2**70, "neg": -(2**70), "text": "ünïcødé ✓ 𝄞", "float": 1.25}
    alice_api.post(events_path(), {"events": [event(payload)]})
    stored = alice_api.get(events_path()).json()["items"][0]["payload"]
    assert stored == json.loads(json.dumps(payload))


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_timestamps_out_of_range_are_400(alice_api, stream, stamp):
    response = alice_api.post(events_path(), {"events": [event({"a": 1}, timestamp=stamp)]})
    assert response.status_code == 400


def test_whole_numbers_with_exponents_keep_their_hashes(alice_api, project, stream):
    """PostgreSQL hands 1e20 back as an integer; verify must still find the chain whole."""
    from continust.audit.integrity import verify

    raw = '{"events": [{"type": "t", "payload": {"x": 1e20, "y": 2.5e300, "z": 1.5}}]}'
    assert alice_api.post(events_path(), raw=raw).status_code == 201
    assert Event.objects.get().payload == {"x": 10**20, "y": 25 * 10**299, "z": 1.5}
    assert verify(project).ok

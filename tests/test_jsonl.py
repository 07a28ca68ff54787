"""JSON Lines: export then import into a fresh database gives exactly the same lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent
from continust.interchange.jsonl import export_lines, import_lines
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.models import ReplayStatus, Stream, Version
from continust.replays import replay as replays
from tests.conftest import put

pytestmark = pytest.mark.django_db


def build_history(project):
    stream = create_stream(project, "pricing")
    (v1,) = put(stream, {"a": 1})
    put(stream, {"a": 2, "nested": {"x": [1, 2, 3]}})
    fork(stream, "b", v1)
    put(stream, {"b": "ü→✓"}, branch="b")
    merge(stream, "b", "main")
    other = create_stream(project, "ledger", reducer="patch")
    append(
        other,
        [
            NewEvent(
                type="p",
                payload={"patch": [{"op": "add", "path": "/n", "value": 1}]},
                causation=v1.event.id,
                actor="bank",
            )
        ],
    )
    return stream


def manage(tmp_path, *args, stdin=None):
    """Run manage.py against a fresh SQLite database under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CONTINUST_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="continust.settings_test")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_it_round_trips_exactly_into_a_fresh_database(project, tmp_path):
    build_history(project)
    exported = "".join(export_lines(project))
    manage(tmp_path, "migrate", "-v0")
    manage(tmp_path, "create_project", "acme")
    manage(tmp_path, "import_jsonl", "-", "--project", "acme", stdin=exported)
    assert manage(tmp_path, "export_jsonl", "--project", "acme") == exported
    assert "ok: 2 streams, 5 events, 5 versions" in manage(tmp_path, "verify")
    again = manage(tmp_path, "import_jsonl", "-", "--project", "acme", "--json", stdin=exported)
    assert json.loads(again) == {
        "streams": 0,
        "events": 0,
        "versions": 0,
        "skipped": 10,
        "why": {
            "events already recorded (same position, same hash)": 5,
            "versions already recorded (same position, same digest)": 5,
        },
    }
    said = manage(tmp_path, "import_jsonl", "-", "--project", "acme", stdin=exported)
    assert said.strip() == (
        "0 streams, 0 events, 0 versions; 10 skipped: 5 events already recorded (same "
        "position, same hash); 5 versions already recorded (same position, same digest)"
    )


def test_a_replay_s_shadow_versions_round_trip_as_versions_of_their_own(project):
    stream = build_history(project)
    replay = replays.start_replay(stream, end="main")
    assert replays.run(replay.pk) == ReplayStatus.DONE
    lines = list(export_lines(project))
    target = create_project("copy")
    result = import_lines(target, lines)
    assert result.skipped == 0 and result.why == {}
    originals = Version.objects.filter(stream__project=project).count()
    assert result.versions == originals == 4 + 4 + 1  # pricing, its shadow, ledger
    shadow = Version.objects.filter(stream__project=target, branch=replay.shadow_branch)
    assert shadow.count() == 4
    assert [line.replace('"copy"', '"acme"') for line in export_lines(target)] == lines
    assert verify(target).ok


def test_it_refuses_a_tampered_file_and_writes_nothing(project):
    build_history(project)
    lines = list(export_lines(project))
    tampered = [line.replace('"a":2', '"a":3') for line in lines]
    target = create_project("copy")
    with pytest.raises(InvalidEvent, match="line"):
        import_lines(target, tampered)
    assert not Stream.objects.filter(project=target).exists()
    assert verify().ok


def test_a_compacted_stream_is_refused_with_its_reason_and_nothing_is_written(project):
    build_history(project)
    lines = list(export_lines(project, ["pricing"]))
    released = [
        line.replace('"payload":{"a":1}', '"payload":null') if '"seq":1,' in line else line
        for line in lines
    ]
    target = create_project("copy")
    with pytest.raises(InvalidEvent, match="was compacted: event #1's payload was released"):
        import_lines(target, released)
    assert not Stream.objects.filter(project=target).exists()

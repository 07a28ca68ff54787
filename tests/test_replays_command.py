"""manage.py replay: start, --list, --cancel, --promote, --json and one-line errors."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from continust.graph.parents import parents_of
from continust.models import Branch, Replay
from continust.replays import replay as replays
from tests.conftest import put

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("replay", "--project", "acme", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def versions(stream):
    return put(stream, {"price": 10}, {"price": 11}, {"price": 12})


def test_it_requests_a_replay(stream, versions):
    text = run(
        "--stream",
        "pricing",
        "--from",
        str(versions[0].pk),
        "--to",
        "main",
        "--skip-type",
        "note",
        "--skip-event",
        str(versions[1].event.id),
        "--until",
        "2030-01-01T00:00",
        "--reducer-version",
        "1",
        "--actor",
        "ci",
    )
    replay = Replay.objects.get()
    assert text == (
        f"replay {replay.pk} of 2 versions requested; it writes branch replay/{replay.pk}"
    )
    assert (replay.start_id, replay.end_id, replay.skip_types, replay.actor) == (
        versions[0].pk,
        versions[2].pk,
        ["note"],
        "ci",
    )
    assert replay.skip_events == [str(versions[1].event.id)]
    assert replay.until.isoformat() == "2030-01-01T00:00:00+00:00"


def test_it_prints_json(stream, versions):
    record = json.loads(run("--stream", "pricing", "--to", "main", "--json"))
    assert record["status"] == "waiting" and record["total"] == 3
    assert record["shadow_branch"] == f"replay/{record['id']}"


def test_it_lists_replays_with_their_state(stream, versions):
    first = replays.start_replay(stream, end="main")
    replays.run(first.pk)
    second = replays.start_replay(stream, end=versions[1].pk)
    lines = run("--list").splitlines()
    assert lines[0] == f"{second.pk}\tpricing\twaiting for a worker: 0/2 (0%)"
    assert lines[1].startswith(f"{first.pk}\tpricing\tdone: 3/3 (100%), ")
    assert lines[1].endswith(" events/s")
    records = json.loads(run("--list", "--json"))
    assert [r["id"] for r in records] == [second.pk, first.pk]
    assert run("--list", "--stream", "pricing").count("\n") == 1


def test_it_says_when_there_are_none(project):
    assert run("--list") == "no replays"


def test_it_cancels(stream, versions):
    replay = replays.start_replay(stream, end="main")
    assert run("--cancel", str(replay.pk)) == f"replay {replay.pk}: cancelled"


def test_it_promotes(stream, versions):
    replay = replays.start_replay(stream, end="main")
    replays.run(replay.pk)
    replay.refresh_from_db()
    text = run("--promote", str(replay.pk), "--actor", "alice")
    head = Branch.objects.get(stream=stream, name="main").head
    assert text == f"promoted replay {replay.pk}: main now points at version {head.pk}"
    assert replay.shadow_head_id in parents_of(head)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stream", "pricing"], "needs --stream and --to"),
        (["--stream", "nope", "--to", "main"], "has no stream 'nope'"),
        (["--stream", "pricing", "--to", "main", "--until", "soon"], "is not an ISO 8601 time"),
        (["--stream", "pricing", "--to", "main", "--reducer-version", "7"], "no reducer merge@7"),
        (["--cancel", "999"], "has no replay 999"),
        (["--promote", "x"], "replay id 'x' is not a number"),
        (["--promote", "¹3"], "replay id '¹3' is not a number"),
    ],
)
def test_it_fails_with_a_one_line_error(stream, versions, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        run(*args)
    assert "\n" not in str(raised.value)
    assert not Replay.objects.exists()


def test_promoting_an_unfinished_replay_is_refused(stream, versions):
    replay = replays.start_replay(stream, end="main")
    with pytest.raises(CommandError, match="only a done replay can be promoted"):
        run("--promote", str(replay.pk))


def test_it_discards_a_cancelled_replay(stream, versions):
    replay = replays.start_replay(stream, end="main")
    replays.cancel(replay)
    text = run("--discard", str(replay.pk), "--actor", "alice")
    assert text == (
        f"replay {replay.pk} discarded: retention no longer keeps the 0 version(s) of branch "
        f"{replay.shadow_branch}; the stream's policy (eternal: every event and state is kept) "
        "releases nothing, so they stay stored"
    )
    replay.refresh_from_db()
    assert replay.discarded_by == "alice"
    with pytest.raises(CommandError, match="already discarded"):
        run("--discard", str(replay.pk))

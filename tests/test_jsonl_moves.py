"""JSON Lines: each branch's moves and the stream's finished replays round trip exactly."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from continust.audit.digests import take_digest
from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent
from continust.interchange import moves as moves_jsonl
from continust.interchange.jsonl import export_lines, import_lines
from continust.log.projects import create_project, create_stream
from continust.log.store import fork, merge
from continust.models import Branch, BranchMove, Replay, ReplayStatus, Stream
from continust.read.as_of import AsOf, head_as_of
from continust.replays import replay as replays
from tests.conftest import put
from tests.visible_rows import visible_rows

pytestmark = pytest.mark.django_db


def build(project):
    """A stream with an append, a fork, a merge, a promoted replay that moved main and a
    cancelled one; every move by a named actor."""
    stream = create_stream(project, "pricing")
    (v1,) = put(stream, {"a": 1})
    put(stream, {"a": 2})
    fork(stream, "b", v1, actor="ana")
    put(stream, {"b": 1}, branch="b")
    merge(stream, "b", "main", actor="li")
    put(stream, {"skip": True})
    done = replays.start_replay(stream, end="main", skip_types=["e"], actor="ana")
    assert replays.run(done.pk) == ReplayStatus.DONE
    replays.promote(done, actor="li")
    cancelled = replays.start_replay(stream, end="main", actor="bo")
    replays.cancel(cancelled, actor="bo")
    return stream


def _copy_as_if_into_an_empty_database(project, lines):
    """Import into another project of this database, the original's replay rows out of
    the way (in an empty database their ids are free)."""
    Replay.objects.filter(stream__project=project).delete()
    target = create_project("copy")
    return target, import_lines(target, lines)


def _rows(slug):
    rows = visible_rows(slug)
    return {name: rows[name] for name in ("pricing",)}


def test_moves_and_replays_round_trip_exactly(project):
    stream = build(project)
    reasons = list(
        BranchMove.objects.filter(branch__stream=stream)
        .order_by("id")
        .values_list("reason", flat=True)
    )
    assert {"append", "fork", "merge", "replay", "promote"} <= set(reasons)
    statuses = sorted(Replay.objects.filter(stream=stream).values_list("status", flat=True))
    assert statuses == [ReplayStatus.CANCELLED, ReplayStatus.DONE]
    lines = list(export_lines(project))
    original = json.loads(json.dumps(_rows("acme"), sort_keys=True))
    target, result = _copy_as_if_into_an_empty_database(project, lines)
    assert (result.moves, result.replays) == (len(reasons), 2)
    assert json.loads(json.dumps(_rows("copy"), sort_keys=True)) == original
    copied = Stream.objects.get(project=target, name="pricing")
    done = Replay.objects.get(stream=copied, status=ReplayStatus.DONE)
    assert done.promoted_by == "li" and done.shadow_branch in set(
        Branch.objects.filter(stream=copied).values_list("name", flat=True)
    )
    assert [line.replace('"copy"', '"acme"') for line in export_lines(target)] == lines
    assert verify(target).ok
    # The same file again adds nothing and says why.
    again = import_lines(target, lines)
    assert (again.moves, again.replays, again.versions) == (0, 0, 0)
    assert again.why[moves_jsonl.SKIPPED_MOVE] == len(reasons)
    assert verify(target).ok


def test_an_as_of_read_and_a_digest_answer_the_same_after_the_round_trip(project):
    stream = build(project)
    main_moves = list(
        BranchMove.objects.filter(branch__stream=stream, branch__name="main").order_by("id")
    )
    lines = list(export_lines(project))
    target, _ = _copy_as_if_into_an_empty_database(project, lines)
    copied = Stream.objects.get(project=target, name="pricing")
    for move in main_moves:
        for moment in (move.at, move.at - timedelta(microseconds=1)):
            when = AsOf(moment=moment)
            was, now = head_as_of(stream, "main", when), head_as_of(copied, "main", when)
            assert (was.digest if was else None) == (now.digest if now else None)
    original = {e["stream"]: e["branches"] for e in take_digest(project)["streams"]}
    copy = {e["stream"]: e["branches"] for e in take_digest(target)["streams"]}
    assert copy["pricing"] == original["pricing"]


def _tampered(lines, change):
    return [change(json.loads(line)) if '"kind":"move"' in line else line for line in lines]


@pytest.mark.parametrize(
    "forge, why",
    [
        (lambda lines: _tampered(lines, lambda m: _set(m, actor="mallory")), "does not hash"),
        (
            lambda lines: [line for line in lines if '"reason":"fork"' not in line],
            "does not chain",
        ),
        (
            lambda lines: [
                line for n, line in enumerate(lines) if n != _index(lines, '"reason":"merge"')
            ],
            "does not chain",
        ),
        (lambda lines: _swap(lines, '"reason":"merge"', '"actor":"","at"'), "chain"),
        (
            lambda lines: [
                re.sub('"name":"b","head":[0-9]+', '"name":"b","head":1', line) for line in lines
            ],
            "do not end at the head",
        ),
        (
            lambda lines: [
                line.replace('"status":"cancelled"', '"status":"running"') for line in lines
            ],
            "only a finished replay",
        ),
        (
            lambda lines: _tampered(lines, lambda m: _set(m, reason=["fork"])),
            "its reason cannot be",
        ),
        (
            lambda lines: [re.sub('"shadow_head":[0-9]+', '"shadow_head":1', x) for x in lines],
            "its shadow head is a version of 'main'",
        ),
        (
            lambda lines: [re.sub('"written":[0-9]+', '"written":"lots"', x) for x in lines],
            "written cannot be 'lots'",
        ),
        (
            lambda lines: [x.replace('+00:00","finished_at"', '","finished_at"') for x in lines],
            "progress_at is not a time with its zone",
        ),
    ],
)
def test_a_tampered_or_inconsistent_file_is_refused_whole(project, forge, why):
    build(project)
    lines = list(export_lines(project))
    target = create_project("copy")
    with pytest.raises(InvalidEvent, match=why):
        import_lines(target, forge(lines))
    assert not Stream.objects.filter(project=target).exists()
    assert not BranchMove.objects.filter(branch__stream__project=target).exists()


def _set(move, **changes):
    return json.dumps({**move, **changes}, separators=(",", ":")) + "\n"


def _index(lines, marker):
    return next(n for n, line in enumerate(lines) if marker in line)


def _swap(lines, first, second):
    i, j = _index(lines, first), _index(lines, second)
    swapped = list(lines)
    swapped[i], swapped[j] = lines[j], lines[i]
    return swapped


def test_a_file_without_moves_or_replays_still_imports_as_before(project):
    build(project)
    lines = list(export_lines(project))
    older = [line for line in lines if json.loads(line)["kind"] not in ("move", "replay")]
    target = create_project("copy")
    result = import_lines(target, older)
    assert (result.moves, result.replays) == (0, 0)
    copied = Stream.objects.get(project=target, name="pricing")
    assert set(
        BranchMove.objects.filter(branch__stream=copied).values_list("reason", flat=True)
    ) == {"import"}
    assert not Replay.objects.filter(stream=copied).exists()
    assert verify(target).ok


def test_a_branch_whose_moves_the_file_does_not_continue_is_refused(project):
    stream = create_stream(project, "pricing")
    put(stream, {"a": 1})
    put(stream, {"a": 2})
    lines = list(export_lines(project, ["pricing"]))
    target = create_project("copy")
    import_lines(target, lines)
    copied = Stream.objects.get(project=target, name="pricing")
    put(copied, {"a": 3})  # the copy's main moves on
    with pytest.raises(InvalidEvent, match=r"has 1 move\(s\) the file does not"):
        import_lines(target, lines)
    # A branch the file does not name is the copy's own: the file still imports.
    again = create_project("again")
    import_lines(again, lines)
    mine = Stream.objects.get(project=again, name="pricing")
    fork(mine, "other", mine.branches.get(name="main").head)
    assert import_lines(again, lines).why[moves_jsonl.SKIPPED_MOVE] == 2


def test_a_replay_keeps_its_id_and_the_next_replay_comes_after_it(project):
    stream = create_stream(project, "pricing")
    put(stream, {"a": 1})
    cancelled = replays.start_replay(stream, end="main", actor="bo")
    replays.cancel(cancelled, actor="bo")
    far = cancelled.pk + 1000
    lines = [
        line.replace(f'"id":{cancelled.pk},', f'"id":{far},') if '"kind":"replay"' in line else line
        for line in export_lines(project, ["pricing"])
    ]
    target = create_project("copy")
    assert import_lines(target, lines).replays == 1
    copied = Stream.objects.get(project=target, name="pricing")
    assert Replay.objects.get(stream=copied).pk == far
    # The database hands out ids after the one given (on PostgreSQL, its sequence is reset).
    later = replays.start_replay(copied, end="main", actor="bo")
    assert later.pk > far

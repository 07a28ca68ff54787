"""JSON Lines: export then import into a fresh database gives exactly the same lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from continust.audit import reviews
from continust.audit.integrity import verify
from continust.audit.reviews import review_log
from continust.audit.tags import create_tag
from continust.core.errors import InvalidEvent
from continust.interchange import compacted
from continust.interchange import replays as replays_jsonl
from continust.interchange.jsonl import export_lines, import_lines
from continust.log.policy import make_policy
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.models import (
    Project,
    ReleasedRun,
    ReleasedVersion,
    ReplayStatus,
    Review,
    Stream,
    Tag,
    Version,
)
from continust.replays import replay as replays
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put
from tests.visible_rows import visible_rows

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
        "moves": 0,
        "replays": 0,
        "skipped": 16,
        "why": {
            "events already recorded (same position, same hash)": 5,
            "versions already recorded (same position, same digest)": 5,
            "branch moves already recorded (same place in the chain, same hash)": 6,
        },
    }
    said = manage(tmp_path, "import_jsonl", "-", "--project", "acme", stdin=exported)
    assert said.strip() == (
        "0 streams, 0 events, 0 versions, 0 branch moves, 0 replays; 16 skipped: 5 events "
        "already recorded (same position, same hash); 5 versions already recorded (same "
        "position, same digest); 6 branch moves already recorded (same place in the chain, "
        "same hash)"
    )


def test_a_replay_s_shadow_versions_round_trip_as_versions_of_their_own(project):
    stream = build_history(project)
    replay = replays.start_replay(stream, end="main")
    assert replays.run(replay.pk) == ReplayStatus.DONE
    lines = list(export_lines(project))
    target = create_project("copy")
    result = import_lines(target, lines)
    # In this database the replay's id is taken (by the replay itself): its row is not
    # copied, its shadow versions and branch are.
    assert result.why == {replays_jsonl.SKIPPED_TAKEN: 1} and result.replays == 0
    originals = Version.objects.filter(stream__project=project).count()
    assert result.versions == originals == 4 + 4 + 1  # pricing, its shadow, ledger
    shadow = Version.objects.filter(stream__project=target, branch=replay.shadow_branch)
    assert shadow.count() == 4
    without_the_replay = [line for line in lines if '"kind":"replay"' not in line]
    assert len(without_the_replay) == len(lines) - 1
    copied = [line.replace('"copy"', '"acme"') for line in export_lines(target)]
    assert copied == without_the_replay
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


def test_the_whole_demo_project_round_trips_into_an_empty_database(tmp_path):
    """The README's demo (compacted sensor stream, replay, review and all) exported,
    imported into an empty database, and every row a user sees compared by stable keys."""
    call_command("seed_demo", stdout=StringIO())
    demo = Project.objects.get(slug="demo")
    assert ReleasedRun.objects.filter(stream__project=demo).exists()
    assert Review.objects.filter(project=demo).exists()
    pricing = Stream.objects.get(project=demo, name="pricing")
    create_tag(pricing, "v1.0", Version.objects.filter(stream=pricing).earliest("id"), actor="ana")
    exported = "".join(export_lines(demo))
    original = json.loads(json.dumps(visible_rows("demo"), sort_keys=True))
    file = tmp_path / "demo.jsonl"
    file.write_text(exported, encoding="utf-8")
    manage(tmp_path, "migrate", "-v0")
    manage(tmp_path, "create_project", "demo")
    manage(tmp_path, "import_jsonl", str(file), "--project", "demo")
    copied = manage(
        tmp_path,
        "shell",
        "--no-imports",
        "-c",
        "from tests.visible_rows import print_rows; print_rows('demo')",
    )
    assert json.loads(copied.strip().splitlines()[-1]) == original
    assert manage(tmp_path, "export_jsonl", "--project", "demo") == exported
    checked = json.loads(manage(tmp_path, "verify", "--project", "demo", "--json"))
    assert checked["ok"], checked["breaks"]
    assert checked["heads"] == verify(demo).as_dict()["heads"]


def test_a_compacted_stream_round_trips_with_its_released_runs(project):
    stream = create_stream(project, "sensor")
    put(stream, *({"n": n} for n in range(12)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=4), actor="ops")
    compaction.run(compaction.request(stream, actor="ops").pk)
    assert ReleasedVersion.objects.filter(run__stream=stream).count() == 8
    lines = list(export_lines(project))
    assert {json.loads(line)["kind"] for line in lines} >= {
        "retention",
        "compaction",
        "released_run",
        "state",
    }
    target = create_project("copy")
    result = import_lines(target, lines)
    assert (result.events, result.versions) == (12 + 2, 12 + 2)  # and the audit stream's
    copy = Stream.objects.get(project=target, name="sensor")
    assert (copy.retention, copy.horizon_versions) == ("ephemeral", 4)
    assert ReleasedVersion.objects.filter(run__stream=copy).count() == 8
    assert [line.replace('"copy"', '"acme"') for line in export_lines(target)] == lines
    assert verify(target).ok
    again = import_lines(target, lines)
    assert (again.events, again.versions) == (0, 0)
    assert verify(target).ok


def test_a_compacted_stream_exported_alone_imports_with_its_compaction_unlinked(project):
    stream = create_stream(project, "sensor")
    put(stream, *({"n": n} for n in range(12)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=4), actor="ops")
    compaction.run(compaction.request(stream, actor="ops").pk)
    alone = list(export_lines(project, ["sensor"]))  # without the _audit stream
    target = create_project("copy")
    result = import_lines(target, alone)
    assert result.versions == 12
    assert result.why == {compacted.UNLINKED: 1}
    copy = Stream.objects.get(project=target, name="sensor")
    assert ReleasedVersion.objects.filter(run__stream=copy).count() == 8
    assert verify(target).ok
    # With the audit stream in the file, a compaction whose record is missing is refused.
    whole = list(export_lines(project))
    record = next(json.loads(line)["record"] for line in whole if '"kind":"compaction"' in line)
    cut = [line for line in whole if record not in line or '"kind":"compaction"' in line]
    with pytest.raises(InvalidEvent):
        import_lines(create_project("other"), cut)


def test_a_released_run_that_does_not_match_its_events_is_refused_whole(project):
    stream = create_stream(project, "sensor")
    put(stream, *({"n": n} for n in range(8)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=2), actor="ops")
    compaction.run(compaction.request(stream, actor="ops").pk)
    lines = list(export_lines(project))
    for forged in (
        [
            re.sub('"merkle_root":"[0-9a-f]+"', '"merkle_root":"' + "0" * 64 + '"', line)
            for line in lines
        ],
        [line for line in lines if '"kind":"released_run"' not in line],
        [line.replace('"n":6', '"n":60') if '"kind":"state"' in line else line for line in lines],
    ):
        target = create_project(f"copy-{len(Project.objects.all())}")
        with pytest.raises(InvalidEvent):
            import_lines(target, forged)
        assert not Stream.objects.filter(project=target).exists()


def test_reviews_and_tags_round_trip_by_stream_and_position(project, alice):
    stream = build_history(project)
    versions = list(Version.objects.filter(stream=stream).order_by("id"))
    review = reviews.open_review(stream, head=versions[-1], base=versions[0], actor="ana")
    reviews.comment(review, actor="li", body="Checked.")
    reviews.check_path(review, actor="li", path="/a")
    create_tag(stream, "launch", versions[1], actor="ana")
    lines = list(export_lines(project))
    kinds = [json.loads(line)["kind"] for line in lines]
    assert {"review", "tag", "audit_record"} <= set(kinds)
    target = create_project("copy")
    import_lines(target, lines)
    (copied,) = Review.objects.filter(project=target)
    copied_stream = Stream.objects.get(project=target, name="pricing")
    ids = list(
        Version.objects.filter(stream=copied_stream).order_by("id").values_list("id", flat=True)
    )
    assert (copied.base_id, copied.head_id) == (ids[0], ids[-1])
    log = review_log(copied)
    assert (log.comment_count, sorted(log.checked)) == (1, ["/a"])
    assert Tag.objects.get(stream=copied_stream, name="launch").version_id == ids[1]
    assert [line.replace('"copy"', '"acme"') for line in export_lines(target)] == lines
    # A file written before reviews were exported still imports, without them.
    older = [
        line
        for line in lines
        if json.loads(line)["kind"] in ("stream", "event", "version", "branch")
    ]
    earlier = create_project("earlier")
    import_lines(earlier, older)
    assert not Review.objects.filter(project=earlier).exists()
    assert verify(earlier).ok
    forged = [
        line.replace('"head":' + str(len(ids)), '"head":2') if '"kind":"review"' in line else line
        for line in lines
    ]
    other = create_project("other")
    with pytest.raises(InvalidEvent, match="another range"):
        import_lines(other, forged)
    assert not Stream.objects.filter(project=other).exists()


def test_created_at_of_streams_versions_branches_and_tags_round_trip(project):
    stream = build_history(project)
    versions = list(Version.objects.filter(stream=stream).order_by("id"))
    create_tag(stream, "launch", versions[1], actor="ana")
    lines = list(export_lines(project))
    target = create_project("copy")
    import_lines(target, lines)
    copy = Stream.objects.get(project=target, name="pricing")
    assert copy.created_at == stream.created_at
    assert [v.created_at for v in Version.objects.filter(stream=copy).order_by("id")] == [
        v.created_at for v in versions
    ]
    assert dict(copy.branches.values_list("name", "created_at")) == dict(
        stream.branches.values_list("name", "created_at")
    )
    tag = Tag.objects.get(stream=copy, name="launch")
    original = Tag.objects.get(stream=stream, name="launch")
    assert (tag.created_at, tag.actor) == (original.created_at, "ana")
    # A branch line that gives another time than the move that made the branch.
    forged = [
        re.sub('"created_at":"[^"]+"', '"created_at":"2020-01-01T00:00:00+00:00"', line)
        if '"kind":"branch"' in line
        else line
        for line in lines
    ]
    other = create_project("other")
    with pytest.raises(InvalidEvent, match="not the one its first move line gives"):
        import_lines(other, forged)
    assert not Stream.objects.filter(project=other).exists()


@pytest.mark.parametrize("kind", ["stream", "version", "branch", "tag"])
def test_a_file_without_created_at_still_imports_at_the_import_s_time(project, kind):
    stream = build_history(project)
    create_tag(stream, "launch", Version.objects.filter(stream=stream).earliest("id"))
    older = []
    for line in export_lines(project):
        record = json.loads(line)
        # A branch's first move line says when it was made, as its branch line does.
        if record["kind"] == kind or (kind, record["kind"]) == ("branch", "move"):
            record.pop("created_at", None)
        older.append(json.dumps(record) + "\n")
    target = create_project("copy")
    before = timezone.now()
    import_lines(target, older)
    copy = Stream.objects.get(project=target, name="pricing")
    rows = {
        "stream": [copy],
        "version": list(Version.objects.filter(stream=copy)),
        "branch": list(copy.branches.all()),
        "tag": list(Tag.objects.filter(stream=copy)),
    }[kind]
    assert rows and all(row.created_at >= before for row in rows)
    assert verify(target).ok


@pytest.mark.parametrize(
    "kind", ["stream", "version", "move", "branch", "tag", "compaction", "review"]
)
@pytest.mark.parametrize("bad", ["2026-01-05T10:30:00", "yesterday", 1767609000, ["x"]])
def test_a_malformed_created_at_is_refused_and_nothing_is_written(project, kind, bad):
    stream = build_history(project)
    create_tag(stream, "launch", Version.objects.filter(stream=stream).earliest("id"))
    first, last = Version.objects.filter(stream=stream).earliest("id"), stream.versions.latest("id")
    reviews.open_review(stream, head=last, base=first, actor="a")
    sensor = create_stream(project, "sensor")
    put(sensor, *({"n": n} for n in range(6)))
    set_policy(sensor, make_policy("ephemeral", horizon_versions=2), actor="ops")
    compaction.run(compaction.request(sensor, actor="ops").pk)
    field = {"compaction": "requested_at", "review": "opened_at"}.get(kind, "created_at")
    forged = []
    for line in export_lines(project):
        record = json.loads(line)
        if record["kind"] == kind and (kind != "move" or record["old_head"] is None):
            record[field] = bad
        forged.append(json.dumps(record) + "\n")
    target = create_project("copy")
    with pytest.raises(InvalidEvent, match=f"{field} is not a time with its zone"):
        import_lines(target, forged)
    assert not Stream.objects.filter(project=target).exists()

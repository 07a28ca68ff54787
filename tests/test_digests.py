"""Digests: a log that no longer extends a digest taken earlier fails verify, in the
database and in an export checked offline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command

from continust.audit import offline
from continust.log import canonical
from continust.log.projects import create_stream
from continust.log.store import fork
from continust.models import BranchMove, Event, Stream
from tests.conftest import put
from tests.test_integrity import run_verify, tamper

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def history(stream):
    """main: v1 - v2 - v3, each its own append (and branch move); side forks at v1."""
    ((v1,), (v2,), (v3,)) = (put(stream, {"a": n}) for n in (1, 2, 3))
    fork(stream, "side", v1)
    return v1, v2, v3


def take(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "digest.json"
    call_command("digest", *args, "-o", str(path))
    return path


def export(tmp_path: Path) -> Path:
    path = tmp_path / "acme.jsonl"
    call_command("export_jsonl", "--project", "acme", "-o", str(path))
    return path


def cut_tail(stream: Stream, version) -> None:
    """Remove the last event with its version, link and move, and reset the stream row and
    the branch: what an attacker with the triggers out of the way can do."""
    previous = Event.objects.get(stream=stream, seq=stream.event_count - 1)
    move = BranchMove.objects.filter(new_head=version).get()
    tamper(
        f"DELETE FROM continust_branchmove WHERE id = {move.pk}", "continust_branchmove", "delete"
    )
    tamper(
        f"UPDATE continust_branch SET head_id = {move.old_head_id}, move_hash = "
        f"'{move.prev_hash}' WHERE id = {move.branch_id}",
        "continust_branch",
    )
    tamper(
        f"DELETE FROM continust_versionparent WHERE child_id = {version.pk}",
        "continust_versionparent",
        "delete",
    )
    tamper(f"DELETE FROM continust_version WHERE id = {version.pk}", "continust_version", "delete")
    tamper(
        f"DELETE FROM continust_event WHERE position = {version.event_id}",
        "continust_event",
        "delete",
    )
    tamper(
        f"UPDATE continust_stream SET event_count = {previous.seq}, last_hash = "
        f"'{previous.hash}' WHERE id = {stream.pk}",
        "continust_stream",
    )


def test_the_digest_covers_heads_counts_and_branches_with_one_root(history, tmp_path):
    v1, _, v3 = history
    document = json.loads(take(tmp_path).read_text())
    (entry,) = document["streams"]
    assert entry == {
        "project": "acme",
        "stream": "pricing",
        "events": 3,
        "head": Event.objects.get(seq=3).hash,
        "branches": {
            "main": {"head": v3.digest, "moves": 3},
            "side": {"head": v1.digest, "moves": 1},
        },
    }
    assert document["format"] == offline.FORMAT and document["taken_at"]
    leaf = hashlib.sha256(canonical.canonical_json(entry).encode()).hexdigest()
    assert document["root"] == leaf  # one leaf is its own root


def test_an_intact_log_extends_its_digest_later_appends_included(history, stream, tmp_path):
    path = take(tmp_path, "--project", "acme")
    put(stream, {"a": 4})
    put(stream, {"b": 1}, branch="side")
    out, error = run_verify("--digest", str(path))
    assert error is None, out
    assert "extends the digest" in out
    out, error = run_verify("--export", str(export(tmp_path)), "--digest", str(path))
    assert error is None and "extends the digest" in out


def test_a_cut_tail_passes_plain_verify_but_not_the_digest(history, stream, tmp_path):
    _, _, v3 = history
    path = take(tmp_path)
    cut_tail(stream, v3)
    assert run_verify()[1] is None  # the hole the digest closes
    out, error = run_verify("--digest", str(path), "--json")
    assert error is not None and error.returncode == 1
    reasons = [b["reason"] for b in json.loads(out)["breaks"]]
    assert any("its tail was cut" in r for r in reasons)
    assert any("moves were removed" in r for r in reasons)
    out, error = run_verify("--export", str(export(tmp_path)), "--digest", str(path))
    assert error is not None and "the tail was cut" in out


def test_a_branch_moved_back_fails_the_digest(history, stream, tmp_path):
    v1, v2, v3 = history
    path = take(tmp_path)
    last = BranchMove.objects.get(new_head=v3)
    tamper(
        f"DELETE FROM continust_branchmove WHERE id = {last.pk}", "continust_branchmove", "delete"
    )
    tamper(
        f"UPDATE continust_branch SET head_id = {v2.pk}, move_hash = '{last.prev_hash}' "
        "WHERE name = 'main'",
        "continust_branch",
    )
    assert run_verify()[1] is None  # head and moves agree again: only the digest knows
    _, error = run_verify("--digest", str(path))
    assert error is not None and "branch 'main'" in str(error)
    out, error = run_verify("--export", str(export(tmp_path)), "--digest", str(path))
    assert error is not None and "moved back" in out


def test_a_rewritten_event_fails_the_digest(history, stream, tmp_path):
    path = take(tmp_path)
    last = Event.objects.get(stream=stream, seq=3)
    body = canonical.event_body(
        id=str(last.id),
        seq=3,
        type=last.type,
        timestamp=last.timestamp,
        payload={"a": 300},
        causation=None,
        correlation=None,
        actor=last.actor,
    )
    forged = canonical.event_hash(last.prev_hash, body)
    tamper(
        f"UPDATE continust_event SET payload = '{{\"a\": 300}}', hash = '{forged}' "
        f"WHERE position = {last.pk}",
        "continust_event",
    )
    tamper(
        f"UPDATE continust_stream SET last_hash = '{forged}' WHERE id = {stream.pk}",
        "continust_stream",
    )
    out, error = run_verify("--digest", str(path), "--json")
    assert error is not None
    assert any(
        b["where"] == "event #3" and "rewritten" in b["reason"] for b in json.loads(out)["breaks"]
    )
    out, error = run_verify("--export", str(export(tmp_path)), "--digest", str(path))
    assert error is not None and "the chain was rewritten" in out


def test_an_altered_digest_is_refused(history, tmp_path):
    path = take(tmp_path)
    document = json.loads(path.read_text())
    document["streams"][0]["events"] = 2
    path.write_text(json.dumps(document))
    out, error = run_verify("--digest", str(path), "--json")
    assert error is not None and "root" in json.loads(out)["error"]


def test_an_export_checked_offline_names_a_tampered_line(history, tmp_path):
    path = export(tmp_path)
    lines = path.read_text().splitlines()
    assert run_verify("--export", str(path))[1] is None
    event = json.loads(lines[2])
    event["payload"] = {"a": 99}
    lines[2] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")
    out, error = run_verify("--export", str(path))
    assert error is not None and "pricing: event #2" in out and "hash does not match" in out


def test_an_export_checked_offline_follows_each_branch_s_move_chain(history, tmp_path):
    digest, path = take(tmp_path), export(tmp_path)
    assert offline.check_export(path.read_text().splitlines()) == []
    lines = path.read_text().splitlines()
    moves = [n for n, line in enumerate(lines) if json.loads(line)["kind"] == "move"]
    assert moves, "the export carries the branches' moves"

    def checked(changed: list[str], document: dict | None = None) -> list[str]:
        return offline.check_export(changed, document, "acme")

    forged = json.loads(lines[moves[1]])
    forged["actor"] = "mallory"
    edited = [*lines[: moves[1]], json.dumps(forged), *lines[moves[1] + 1 :]]
    assert any("hash does not match its content" in p for p in checked(edited))
    # The last move of main cut out: the branch line's head is not where the chain ends,
    # and the digest counted more moves than the file holds.
    last_main = max(n for n in moves if json.loads(lines[n])["branch"] == "main")
    cut = lines[:last_main] + lines[last_main + 1 :]
    problems = checked(cut, json.loads(digest.read_text()))
    assert any("is not where its last move ended" in p for p in problems), problems
    assert any("moves were cut" in p for p in problems), problems


def test_the_offline_verifier_runs_without_django(history, tmp_path):
    digest, exported = take(tmp_path), export(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    script = tmp_path / "check.py"  # a copy outside the package: it must stand alone
    script.write_text((REPO / "continust" / "audit" / "offline.py").read_text())
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(exported), "--digest", str(digest)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


def test_a_stream_without_events_has_the_genesis_head(project, tmp_path):
    create_stream(project, "empty")
    document = json.loads(take(tmp_path).read_text())
    assert document["streams"][0] == {
        "project": "acme",
        "stream": "empty",
        "events": 0,
        "head": canonical.GENESIS,
        "branches": {},
    }
    assert run_verify("--digest", str(take(tmp_path)))[1] is None


def test_a_stream_the_digest_names_must_still_exist(history, tmp_path):
    path = take(tmp_path)
    document = json.loads(path.read_text())
    ghost = {**document["streams"][0], "stream": "ghost"}
    document["streams"].insert(0, ghost)
    document["root"] = offline.digest_root(document["streams"])
    path.write_text(json.dumps(document))
    _, error = run_verify("--digest", str(path))
    assert error is not None and "acme/ghost: stream: the digest names it, and it is gone" in str(
        error
    )


def test_the_short_verifier_in_the_docs_checks_an_export(history, stream, tmp_path):
    text = (REPO / "docs" / "integrity.md").read_text()
    code = text.split("their own:\n\n```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "check.py"
    script.write_text(code)
    digest = take(tmp_path)
    put(stream, {"a": 4})
    exported = export(tmp_path)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", str(script), str(exported), str(digest), "acme"],
            capture_output=True,
            text=True,
            check=False,
        )

    assert (check().returncode, check().stdout) == (0, "ok\n")
    lines = exported.read_text().splitlines()
    exported.write_text("\n".join(lines[:3]) + "\n")  # the stream line and two events
    assert "the tail was cut" in check().stderr


@pytest.mark.django_db(transaction=True)
def test_a_digest_taken_while_another_writer_moves_a_branch_still_verifies(stream):
    from django.db import connection, connections

    from continust.audit.digests import take_digest, verify_digest

    if connection.vendor != "postgresql":
        pytest.skip("on SQLite the digest's transaction holds the only writer lock")
    put(stream, {"a": 1})

    def another_writer() -> None:
        put(stream, {"a": 2})
        connections.close_all()

    moved: list[bool] = []

    def append_after_reading_moves(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "continust_branchmove" in sql and not moved:
            moved.append(True)
            writer = threading.Thread(target=another_writer)
            writer.start()
            writer.join()
        return result

    with connection.execute_wrapper(append_after_reading_moves):
        document = take_digest(stream.project)
    assert moved
    report = verify_digest(document)
    assert report.ok, report.breaks

"""Check an export (``export_jsonl``) and a digest without the database.

This file stands alone on purpose: it needs Python's standard library only, so an
auditor can copy it and check what a continust server gave them, trusting none of
its code. ``docs/integrity.md`` describes the formats; ``manage.py verify --export``
runs it, and so does ``python continust/audit/offline.py EXPORT [--digest FILE]``.

What it proves: every event's hash is the SHA-256 of the previous hash joined to the
event's canonical JSON, so the chain cannot be edited without changing its head; each
version's digest covers its event, its parents' digests and its state's hash; the
digest's root covers each stream's head, event count and branch heads; each branch's
moves form a chain of their own (a move's hash covers the previous move's hash, the
branch, the digests of the versions it moved from and to, why, who and when), and a
branch's head is where its last move ended. An export extends a digest when each stream
the digest names still has the event the digest ended at, with the same hash, no branch
went back to an ancestor of its head, and no branch has fewer moves than it counted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = "continust-digest/1"
GENESIS = "0" * 64
# Lines of a compacted stream's released runs, replays and reviews: the import checks
# them against the database's rows; the chains and the digests checked here do not need
# them.
IMPORT_CHECKED = frozenset(
    {
        "retention",
        "compaction",
        "released_run",
        "state",
        "replay",
        "review",
        "tag",
        "audit_record",
    }
)


def canonical_json(value: Any) -> str:
    """Keys sorted by code point, no spaces, UTF-8 kept, numbers as Python writes them."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def merkle_root(hashes: Sequence[str]) -> str:
    """Pairs hashed as sha256(left || right) over raw bytes, an odd last node carried up."""
    level = [bytes.fromhex(h) for h in hashes]
    if not level:
        return GENESIS
    while len(level) > 1:
        paired = [
            hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def entry_leaf(entry: dict[str, Any]) -> str:
    """The hash of one stream's entry in a digest: the leaf of the digest's root."""
    return sha256(canonical_json(entry))


def digest_root(entries: Iterable[dict[str, Any]]) -> str:
    """The root over a digest's entries, in the order they are listed."""
    return merkle_root([entry_leaf(e) for e in entries])


def check_digest_document(document: Any) -> list[str]:
    """Return what is wrong with a digest document itself (its format, order, root)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return [f"not a {FORMAT} document"]
    entries = document.get("streams")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return ["its streams are not a list of entries"]
    keys = [(e.get("project", ""), e.get("stream", "")) for e in entries]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        return ["its streams are not listed once each, by project and name"]
    if digest_root(entries) != document.get("root"):
        return ["its root is not the root over its streams: the digest was altered"]
    return []


@dataclass
class ExportedStream:
    """One stream of an export: its events' hashes by seq, its versions, its branches."""

    name: str
    events: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # event id -> its chain hash
    versions: dict[int, tuple[str, list[int]]] = field(default_factory=dict)  # ref -> digest
    branches: dict[str, int] = field(default_factory=dict)  # name -> version ref
    # name -> (the hash of its last move, the version ref it ended at, how many moves)
    moves: dict[str, tuple[str, int | None, int]] = field(default_factory=dict)


def read_export(lines: Iterable[str]) -> tuple[dict[str, ExportedStream], list[str]]:
    """Read an export, checking every hash it can; return its streams and the problems."""
    streams: dict[str, ExportedStream] = {}
    problems: list[str] = []
    previous = GENESIS
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            kind = record.get("kind")
            if kind in IMPORT_CHECKED:
                continue
            if kind == "stream":
                streams[record["name"]] = ExportedStream(record["name"])
                previous = GENESIS
                continue
            stream = streams.get(record.get("stream"))
            if stream is None:
                problems.append(f"line {number}: a {kind} line before its stream line")
            elif kind == "event":
                previous = _check_event(stream, record, previous, number, problems)
            elif kind == "version":
                _check_version(stream, record, number, problems)
            elif kind == "move":
                _check_move(stream, record, number, problems)
            elif kind == "branch":
                name = record["name"]
                if record["head"] not in stream.versions:
                    problems.append(f"{stream.name}: branch {name!r}: no version {record['head']}")
                moved = stream.moves.get(name)
                if moved is not None and moved[1] != record["head"]:
                    problems.append(
                        f"{stream.name}: branch {name!r}: its head v{record['head']} is not "
                        f"where its last move ended (v{moved[1]})"
                    )
                stream.branches[name] = record["head"]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            problems.append(f"line {number}: not a line of an export ({err!r})")
    return streams, problems


def _check_event(
    stream: ExportedStream, record: dict[str, Any], previous: str, number: int, problems: list[str]
) -> str:
    where = f"{stream.name}: event #{record['seq']} (line {number})"
    if record["seq"] != len(stream.events) + 1:
        problems.append(f"{where}: expected event #{len(stream.events) + 1}")
    if record["prev_hash"] != previous:
        problems.append(f"{where}: its previous hash is not the hash of the event before it")
    stream.events.append(record["hash"])
    stream.hashes[record["id"]] = record["hash"]
    if record["payload"] is None:
        return str(record["hash"])  # released by compaction: only its hash remains
    body = {
        key: record[key]
        for key in (
            "id",
            "seq",
            "type",
            "timestamp",
            "payload",
            "causation",
            "correlation",
            "actor",
        )
    }
    if sha256(record["prev_hash"] + canonical_json(body)) != record["hash"]:
        problems.append(f"{where}: its hash does not match its content")
    return str(record["hash"])


def _check_move(
    stream: ExportedStream, record: dict[str, Any], number: int, problems: list[str]
) -> None:
    name = record["branch"]
    where = f"{stream.name}: a move of branch {name!r} (line {number})"
    previous, ended, count = stream.moves.get(name, (GENESIS, None, 0))
    if record["prev_hash"] != previous:
        problems.append(
            f"{where}: its previous hash is not the hash of the branch's move before it"
        )
    if record["old_head"] != ended:
        problems.append(f"{where}: it starts where the move before it did not end")
    old, new = record["old_head"], record["new_head"]
    heads = [stream.versions.get(ref) if ref is not None else ("", []) for ref in (old, new)]
    if heads[0] is None or heads[1] is None:
        problems.append(f"{where}: it names a version the export does not hold before it")
    else:
        body = {
            "branch": name,
            "from": heads[0][0] if old is not None else None,
            "to": heads[1][0],
            "reason": record["reason"],
            "actor": record["actor"],
            "at": record["at"],
        }
        if sha256(record["prev_hash"] + canonical_json(body)) != record["hash"]:
            problems.append(f"{where}: its hash does not match its content")
    stream.moves[name] = (str(record["hash"]), new, count + 1)


def _check_version(
    stream: ExportedStream, record: dict[str, Any], number: int, problems: list[str]
) -> None:
    where = f"{stream.name}: version {record['ref']} (line {number})"
    parents = record["parents"]
    if any(p not in stream.versions for p in parents):
        problems.append(f"{where}: a parent is not an earlier version")
    # The version digest covers the event's chain hash; look it up by the event's id.
    event_hash = stream.hashes.get(record["event"])
    computed = sha256(
        canonical_json(
            {
                "event": event_hash,
                "parents": [stream.versions[p][0] for p in parents if p in stream.versions],
                "state": record["state_hash"],
                "reducer": f"{record['reducer']}@{record['reducer_version']}",
            }
        )
    )
    if event_hash is None or computed != record["digest"]:
        problems.append(f"{where}: its digest does not cover its event, parents and state")
    stream.versions[record["ref"]] = (record["digest"], parents)


def check_export(
    lines: Iterable[str], document: dict[str, Any] | None = None, project: str | None = None
) -> list[str]:
    """Return every problem of an export, and of it against a digest when one is given."""
    streams, problems = read_export(lines)
    if document is None:
        return problems
    document_problems = check_digest_document(document)
    if document_problems:
        return problems + [f"digest: {p}" for p in document_problems]
    entries = document["streams"]
    projects = sorted({e["project"] for e in entries})
    if project is None and len(projects) > 1:
        return problems + [
            f"digest: it covers the projects {', '.join(projects)}; an export holds one: name it"
        ]
    chosen = project if project is not None else (projects[0] if projects else None)
    for entry in entries:
        if entry["project"] == chosen:
            problems.extend(_check_extends(streams.get(entry["stream"]), entry))
    return problems


def _check_extends(stream: ExportedStream | None, entry: dict[str, Any]) -> list[str]:
    """Return how the export fails to extend one stream's digest entry."""
    name = entry["stream"]
    if stream is None:
        return [f"{name}: the digest names it, the export does not hold it"]
    count = entry["events"]
    problems = []
    if len(stream.events) < count:
        problems.append(
            f"{name}: the digest covers {count} events, the export holds "
            f"{len(stream.events)}: the tail was cut"
        )
    elif (stream.events[count - 1] if count else GENESIS) != entry["head"]:
        problems.append(
            f"{name}: event #{count} is not the one the digest ended at: the chain was rewritten"
        )
    refs = {digest: ref for ref, (digest, _) in stream.versions.items()}
    for branch, taken in sorted(entry["branches"].items()):
        ref = refs.get(taken["head"])
        if ref is None:
            problems.append(f"{name}: branch {branch!r}: the version it had is gone")
        elif branch not in stream.branches:
            problems.append(f"{name}: branch {branch!r} is gone")
        elif stream.branches[branch] != ref and stream.branches[branch] in _ancestors(stream, ref):
            problems.append(
                f"{name}: branch {branch!r} was moved back to an ancestor of "
                "the head the digest names"
            )
        moved = stream.moves.get(branch)
        if moved is not None and moved[2] < taken["moves"]:
            problems.append(
                f"{name}: branch {branch!r}: the digest counts {taken['moves']} moves, the "
                f"export holds {moved[2]}: moves were cut"
            )
    return problems


def _ancestors(stream: ExportedStream, ref: int) -> set[int]:
    seen: set[int] = set()
    todo = [ref]
    while todo:
        for parent in stream.versions.get(todo.pop(), ("", []))[1]:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    """Check an export file, against a digest when one is given; print each problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="a file export_jsonl wrote")
    parser.add_argument("--digest", help="a digest the export must extend")
    parser.add_argument("--project", help="which of the digest's projects the export holds")
    args = parser.parse_args(argv)
    document = None
    if args.digest:
        with open(args.digest, encoding="utf-8") as handle:
            document = json.load(handle)
    with open(args.export, encoding="utf-8") as handle:
        problems = check_export(handle, document, args.project)
    for problem in problems:
        print(problem)
    print("broken" if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Digests: a small signed-off-able summary of the log that later proves nothing was cut.

A digest names, per stream, the hash of its last event, how many events it had
and where each branch pointed (the version's digest and how many moves it had
made), with one Merkle root over those entries (``continust.audit.offline`` computes it,
and checks exports offline). Kept outside the database, an old digest shows that
the log still extends it: ``verify_digest`` fails when a covered event was removed
or rewritten, a stream or branch is gone, or a branch was moved back without a
recorded move. ``docs/integrity.md`` describes the format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count

from continust.audit import offline
from continust.audit.integrity import Broken, Report, verify
from continust.core.errors import ContinustError
from continust.log.canonical import timestamp_text
from continust.models import BranchMove, Event, Project, Stream, Version


def take_digest(project: Project | None = None) -> dict[str, Any]:
    """Return a digest of every stream (or one project's) as it is now."""
    streams = Stream.objects.select_related("project").order_by("project__slug", "name")
    if project is not None:
        streams = streams.filter(project=project)
    with transaction.atomic():
        entries = [_entry(stream) for stream in streams]
    return {
        "format": offline.FORMAT,
        "taken_at": timestamp_text(datetime.now(UTC)),
        "project": project.slug if project is not None else None,
        "streams": entries,
        "root": offline.digest_root(entries),
    }


def _entry(stream: Stream) -> dict[str, Any]:
    # Heads and move counts in one query: read apart (each statement its own snapshot),
    # a move committed in between gives a count that does not reach the head.
    branches = {
        name: {"head": digest, "moves": count}
        for name, digest, count in stream.branches.order_by("name")
        .annotate(move_count=Count("moves"))
        .values_list("name", "head__digest", "move_count")
    }
    return {
        "project": stream.project.slug,
        "stream": stream.name,
        "events": stream.event_count,
        "head": stream.last_hash,
        "branches": branches,
    }


def verify_digest(document: Any, project: Project | None = None) -> Report:
    """Verify the streams a digest covers, and that the log still extends it."""
    problems = offline.check_digest_document(document)
    if problems:
        raise ContinustError(f"the digest is refused: {problems[0]}")
    entries = [e for e in document["streams"] if project is None or e["project"] == project.slug]
    found = {
        (s.project.slug, s.name): s
        for s in Stream.objects.select_related("project").filter(
            project__slug__in={e["project"] for e in entries}
        )
    }
    covered = [
        found[key] for key in sorted(found) if key in {(e["project"], e["stream"]) for e in entries}
    ]
    report = verify(streams=covered)
    for entry in entries:
        stream = found.get((entry["project"], entry["stream"]))
        for where, reason in _extension_breaks(stream, entry):
            report.breaks.append(Broken(entry["project"], entry["stream"], where, reason))
    return report


def _extension_breaks(stream: Stream | None, entry: dict[str, Any]) -> list[tuple[str, str]]:
    """Return where the stream no longer extends its digest entry, and why."""
    if stream is None:
        return [("stream", "the digest names it, and it is gone")]
    count, head = entry["events"], entry["head"]
    breaks = []
    if stream.event_count < count:
        breaks.append(
            (
                "chain head",
                f"the digest covers {count} events, the stream records "
                f"{stream.event_count}: its tail was cut",
            )
        )
    if count:
        stored = Event.objects.filter(stream=stream, seq=count).values_list("hash", flat=True)
        if list(stored) != [head]:
            breaks.append(
                (
                    f"event #{count}",
                    "it is not the event the digest ended at: the chain was cut or rewritten",
                )
            )
    for name, taken in sorted(entry["branches"].items()):
        breaks.extend(_branch_breaks(stream, name, taken))
    return breaks


def _branch_breaks(stream: Stream, name: str, taken: dict[str, Any]) -> list[tuple[str, str]]:
    where = f"branch {name!r}"
    moves = list(
        BranchMove.objects.filter(branch__stream=stream, branch__name=name)
        .order_by("id")
        .values_list("new_head_id", flat=True)
    )
    if not stream.branches.filter(name=name).exists():
        return [(where, "the digest names it, and it is gone")]
    if len(moves) < taken["moves"]:
        return [
            (
                where,
                f"the digest counted {taken['moves']} moves, {len(moves)} are "
                "recorded: moves were removed",
            )
        ]
    digest = (
        Version.objects.filter(pk=moves[taken["moves"] - 1])
        .values_list("digest", flat=True)
        .first()
        if taken["moves"]
        else None
    )
    if digest != taken["head"]:
        return [
            (
                where,
                f"move {taken['moves']} no longer ends at the head the digest names: "
                "the branch's history was rewritten",
            )
        ]
    return []

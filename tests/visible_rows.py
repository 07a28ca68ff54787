"""Every row of a project a user can see, keyed by what is stable across databases.

Database ids differ from one database to another: versions are named by their stream
and position in it (creation order), events by their id, reviews by their opening
event. ``python manage.py shell -c`` runs ``print_rows`` in another database.
"""

from __future__ import annotations

import json
from typing import Any

from continust.audit.reviews import review_log
from continust.graph.parents import parents_in_stream
from continust.interchange.compacted import ordinals
from continust.log.canonical import timestamp_text
from continust.models import (
    AuditRecord,
    Branch,
    BranchMove,
    Compaction,
    Event,
    Project,
    ReleasedRun,
    ReleasedVersion,
    Replay,
    Review,
    State,
    Stream,
    Tag,
    Version,
)


def _text(value: Any) -> Any:
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return timestamp_text(value)
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return value


def visible_rows(slug: str) -> dict[str, Any]:
    """Return the project's rows as plain JSON, by stable keys."""
    project = Project.objects.get(slug=slug)
    found: dict[str, Any] = {}
    position: dict[str, dict[int, int]] = {}
    for stream in Stream.objects.filter(project=project).order_by("name"):
        ordinal = position[stream.name] = ordinals(stream)
        parents = parents_in_stream(stream.pk)
        released = set(
            ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
        )
        versions = list(Version.objects.filter(stream=stream).order_by("id"))
        events = {
            e.position: e for e in Event.objects.filter(stream=stream).order_by("seq").iterator()
        }
        stored = dict(
            State.objects.filter(pk__in={v.state_id for v in versions}).values_list("hash", "data")
        )
        found[stream.name] = {
            "stream": [
                stream.reducer,
                stream.reducer_version,
                stream.retention,
                stream.snapshot_every,
                stream.horizon_versions,
                _text(stream.horizon_age),
                stream.event_count,
                stream.last_hash,
                _text(stream.created_at),
            ],
            "events": [
                [
                    e.seq,
                    str(e.id),
                    e.type,
                    _text(e.timestamp),
                    e.payload,
                    str(e.causation_id),
                    str(e.correlation_id),
                    e.actor,
                    e.prev_hash,
                    e.hash,
                ]
                for e in events.values()
            ],
            "versions": [
                [
                    ordinal[v.pk],
                    str(events[v.event_id].id),
                    [ordinal[p] for p in parents.get(v.pk, [])],
                    v.generation,
                    v.digest,
                    v.key,
                    v.branch,
                    v.reducer,
                    v.reducer_version,
                    v.state_id,
                    v.pk in released,
                    _text(v.created_at),
                ]
                for v in versions
            ],
            # What a reader gets without folding: every state the original stored.
            "stored_states": {
                ordinal[v.pk]: stored[v.state_id] for v in versions if v.state_id in stored
            },
            "branches": {
                name: [ordinal[head], _text(created_at)]
                for name, head, created_at in Branch.objects.filter(stream=stream).values_list(
                    "name", "head_id", "created_at"
                )
            },
            # Each branch's moves, in the order they were recorded (as-of reads, digests).
            "moves": [
                [
                    m.branch.name,
                    ordinal[m.old_head_id] if m.old_head_id else None,
                    ordinal[m.new_head_id],
                    m.reason,
                    m.actor,
                    _text(m.at),
                    m.prev_hash,
                    m.hash,
                ]
                for m in BranchMove.objects.filter(branch__stream=stream)
                .select_related("branch")
                .order_by("id")
            ],
            "branch_move_hashes": dict(
                Branch.objects.filter(stream=stream).values_list("name", "move_hash")
            ),
            # The replays list: every finished replay, by its id (its shadow branch's name).
            "replays": [
                [
                    r.pk,
                    ordinal[r.start_id] if r.start_id else None,
                    ordinal[r.end_id],
                    ordinal[r.shadow_head_id] if r.shadow_head_id else None,
                    r.shadow_branch,
                    r.branch,
                    r.skip_types,
                    r.skip_events,
                    _text(r.until) if r.until else None,
                    r.reducer_version,
                    r.upcast_to,
                    r.actor,
                    _text(r.created_at),
                    r.status,
                    r.total,
                    r.done,
                    r.written,
                    r.cursor,
                    r.cancel_requested,
                    [_text(t) if t else None for t in (r.started_at, r.resumed_at)],
                    r.resumed_done,
                    [_text(t) if t else None for t in (r.progress_at, r.finished_at)],
                    r.error,
                    str(r.error_event) if r.error_event else None,
                    _text(r.promoted_at) if r.promoted_at else None,
                    r.promoted_by,
                    _text(r.discarded_at) if r.discarded_at else None,
                    r.discarded_by,
                ]
                for r in Replay.objects.filter(stream=stream).order_by("id")
            ],
            "compactions": [
                [
                    c.policy,
                    ordinal.get(c.upto),
                    _text(c.cutoff) if c.cutoff else None,
                    c.status,
                    c.requested_by,
                    _text(c.requested_at),
                    _text(c.started_at) if c.started_at else None,
                    _text(c.finished_at) if c.finished_at else None,
                    c.snapshots_stored,
                    c.states_released,
                    c.payloads_released,
                    c.versions_released,
                    c.runs,
                    c.bytes_before,
                    c.bytes_after,
                    str(c.record.id) if c.record else None,
                ]
                for c in Compaction.objects.filter(stream=stream).order_by("id")
            ],
            "released_runs": [
                [
                    ordinal[r.first_id],
                    ordinal[r.last_id],
                    r.length,
                    r.merkle_root,
                    r.bytes_released,
                    sorted(
                        ordinal[v]
                        for v in ReleasedVersion.objects.filter(run=r).values_list(
                            "version_id", flat=True
                        )
                    ),
                ]
                for r in ReleasedRun.objects.filter(stream=stream).order_by("first_id")
            ],
            "tags": [
                [t.name, ordinal[t.version_id], t.actor, _text(t.created_at), str(t.event.id)]
                for t in Tag.objects.filter(stream=stream).order_by("name")
            ],
        }
    reviews = []
    for review in Review.objects.filter(project=project).order_by("opened_at", "title"):
        refs = position[review.stream.name]
        log = review_log(review)
        reviews.append(
            [
                str(review.opened_event.id),
                review.stream.name,
                refs[review.base_id] if review.base_id else None,
                refs[review.head_id],
                review.branch,
                review.title,
                review.opened_by,
                _text(review.opened_at),
                log.status,
                log.comment_count,
                [str(e.id) for e in log.events],
                sorted(log.checked),
            ]
        )
    found["reviews"] = reviews
    found["audit_records"] = sorted(
        [str(event), str(review) if review else None]
        for event, review in AuditRecord.objects.filter(project=project).values_list(
            "event__id", "review__opened_event__id"
        )
    )
    return found


def print_rows(slug: str) -> None:
    """Print the project's rows as one line of JSON (for another process to compare)."""
    print(json.dumps(visible_rows(slug), sort_keys=True))

"""Replays: re-fold a range of a stream's events into a shadow branch, in resumable chunks.

What is replayed. A replay names an end (a version, usually a branch head) and a
start (a version, or the root). Its range is every version the end reaches and the
start does not (``git rev-list END ^START``), oldest first. Each version of the
range is made again: the same event, a new version whose parents are the replicas
of the original's parents (parents outside the range, the start and its ancestry,
are shared). The new versions share State rows with the originals wherever the
states agree: the State table is content-addressed.

Why the whole range and not only the end's first-parent line: a merge version's
state is derived (``folding.derive_state``) from its two parents *and their merge
bases*. Replaying the first-parent line alone would hang each merge between a
replica and an original side branch whose merge base lies below the start, so
either the merged state would change although the reducer did not, or the stored
state would not be the one ``verify`` recomputes. Replaying every version of the
range keeps the graph's shape, so the merge bases of replicas are the replicas of
the original merge bases: with the reducers that made the history, a replay
reproduces every state hash (invariant 5), merges included, and ``verify``
accepts every replica.

Filters. Versions whose event type or event id is skipped, or whose event is
timestamped after ``until``, are not made again; their children hang on the
skipped version's (replayed) first parent instead. A merge whose parents thereby
become one version is left out likewise. ``reducer_version`` folds the versions
made by the stream's reducer with another registered version of it; merges stay
three-way merges.

Output. The shadow branch ``replay/<id>`` is created and moved only in the
transactions that commit chunks: it points at the newest replica committed, and
at the end at the replica of the end. The original versions are never changed.
``promote`` moves the original branch onto a *promote version* (event
``continust.promote``, reducer ``ours``) whose parents are the shadow head and the
branch's old head and whose state is the shadow head's, as ``git merge -s ours``
does: the old history stays reachable from the branch, so lineage, merge bases,
reviews and blame stay connected. The move is recorded with reason "promote".

Protocol (planning apart from doing, progress recorded per chunk):

- ``start_replay`` validates the request, plans the range when it is short
  (longer ranges are planned, counted and checked by the worker, so a request
  stays quick) and writes the Replay row and its outbox message in one
  transaction (``continust.jobs.outbox`` sends it to the broker after the commit, or
  later).
- ``run`` (the Celery task) claims the replay (``continust.jobs.leases``: a
  conditional UPDATE that only succeeds when no live lease is held, bumping
  ``fence``: the claim's token). A delivery that finds a live lease steps aside;
  the leases' outbox sweep sends the replay again once a lease lapsed without being
  renewed (a killed worker).
- It folds ``CONTINUST_REPLAY_CHUNK_EVENTS`` versions in memory, then commits
  them in one transaction that first locks the Replay row and checks the token,
  the status and the cancel flag, then writes the versions, moves the shadow
  branch and records the cursor, the counts and a renewed lease. A stale holder's
  commit is refused and rolled back, so a second delivery cannot write twice.
- A resumed run plans the same range again, rebuilds which replica stands for
  which original up to the cursor (the replay's versions carry its branch name),
  and goes on after the cursor.
- A reducer error stops the replay: the event and error are recorded and the
  chunk being folded is dropped, so what exists is exactly the committed chunks.
  A cancel is noticed at the next commit, which then writes nothing.
- Chunk transactions on PostgreSQL do not wait for the WAL flush
  (``synchronous_commit off``): a database crash may lose the last chunks whole,
  with their progress, and the replay makes them again.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from continust.audit import trail
from continust.core.database import on_postgresql, relaxed_commit
from continust.core.errors import (
    ConcurrencyConflict,
    ContinustError,
    InvalidEvent,
    NotFound,
    StateReleased,
)
from continust.core.parsing import parse_number
from continust.documents.diff import Change, diff
from continust.graph.cache import graph_for
from continust.graph.parents import parents_in_range
from continust.jobs import leases, outbox
from continust.jobs.leases import Lease, LeaseLost
from continust.log import canonical, statistics
from continust.log.folding import MERGE_REDUCER, derive_state, fold_event, hashed_storable_state
from continust.log.lookup import resolve_version
from continust.log.policy import policy_of
from continust.log.reducers import get_reducer
from continust.log.rows import insert_rows, insert_state_texts, reserve_ids
from continust.log.states import state_of, states_of
from continust.log.store import MAIN, Batch, NewEvent, lock_stream, move_branch, validate_event
from continust.models import (
    Branch,
    Event,
    Project,
    ReleasedVersion,
    Replay,
    ReplayStatus,
    State,
    Stream,
    Version,
    VersionParent,
)
from continust.schemas.registry import registry_of
from continust.schemas.upcasting import newest_versions, upcast_payload

log = logging.getLogger(__name__)

TASK = "continust.replay"
ROOT = "root"
# A replay claimed this many times without finishing is given up as failed.
MAX_ATTEMPTS = 10
# The span of version ids read per query while planning a range.
PLAN_WINDOW = 20_000
# A request plans (and so checks) ranges up to this long itself; the worker plans longer ones.
REQUEST_PLAN_LIMIT = 50_000

PROMOTE_EVENT = "continust.promote"
DISCARD_EVENT = "replay.discarded"  # in the project's audit stream
PROMOTE_REDUCER = "ours"  # keeps the first parent's (the shadow head's) state

SKIPPED = "skipped"
LOST = "lost"


class _Stopped(Exception):
    """A commit found the replay cancelled: the run stops with that outcome."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


REPLAYS = leases.register(
    leases.Kind(
        name="replay",
        model=Replay,
        task=TASK,
        active=Q(status__in=[ReplayStatus.WAITING, ReplayStatus.RUNNING]),
        lease_seconds=lambda: settings.CONTINUST_REPLAY_LEASE_SECONDS,
        resend_seconds=lambda: settings.CONTINUST_REPLAY_RESEND_SECONDS,
    )
)
outbox_key = REPLAYS.key


# Planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRange:
    """The versions a replay makes again, oldest first, each with its parents in order."""

    ids: list[int]
    parents: list[tuple[int, ...]]

    def __len__(self) -> int:
        return len(self.ids)


def plan_range(
    stream: Stream, start: Version | None, end: Version, *, limit: int | None = None
) -> ReplayRange | None:
    """Return the versions ``end`` reaches and ``start`` does not, oldest first.

    Walk the stream's versions downwards from ``end``, a window of ids at a time
    (ids order parents before children), marking what each side reaches, and stop
    as soon as everything ``end`` still reaches is reached from ``start`` too. With
    ``limit``, give up (return None) once the range is found to be longer.
    """
    walk = _RangeWalk(end.pk, start.pk if start is not None else None)
    lowest = Version.objects.filter(stream=stream).aggregate(low=Min("id"))["low"] or 0
    upper = end.pk
    while walk.going and upper >= lowest:
        low = max(lowest, upper - PLAN_WINDOW + 1)
        window = sorted(
            Version.objects.filter(stream=stream, id__gte=low, id__lte=upper).values_list(
                "id", flat=True
            ),
            reverse=True,
        )
        walk.visit(window, parents_in_range(low, upper))
        if limit is not None and len(walk.ids) > limit:
            return None
        upper = low - 1
    if not walk.found_start:
        raise InvalidEvent(f"version {walk.start} is not an ancestor of version {end.pk}")
    return ReplayRange(walk.ids[::-1], walk.parents[::-1])


class _RangeWalk:
    """The marks of ``plan_range``'s walk: what the end and the start still reach."""

    def __init__(self, end: int, start: int | None) -> None:
        self.start = start
        self.from_end = {end}
        self.from_start = {start} if start is not None else set()
        self.found_start = start is None
        self.ids: list[int] = []
        self.parents: list[tuple[int, ...]] = []

    @property
    def going(self) -> bool:
        return bool(self.from_end) and not self.from_end <= self.from_start

    def visit(self, window: list[int], links: dict[int, tuple[int, ...]]) -> None:
        """Mark the versions of a window, newest first."""
        for vid in window:
            in_end, in_start = vid in self.from_end, vid in self.from_start
            if not (in_end or in_start):
                continue
            self.from_end.discard(vid)
            self.from_start.discard(vid)
            parents = links.get(vid, ())
            if in_start:
                self.from_start.update(parents)
                self.found_start = self.found_start or (in_end and vid == self.start)
            else:
                self.ids.append(vid)
                self.parents.append(parents)
                self.from_end.update(parents)
            if not self.going:
                break
        if not self.going and self.start in self.from_end:
            self.found_start = True


# Requests --------------------------------------------------------------------------------


def _resolve(stream: Stream, ref: Version | str | int | None) -> Version | None:
    if isinstance(ref, Version):
        if ref.stream_id != stream.pk:
            raise NotFound(f"version {ref.pk} is not in stream {stream.name}")
        return ref
    if ref is None or str(ref).strip() in {"", ROOT}:
        return None
    return resolve_version(stream, ref)


def _branch_to_promote(stream: Stream, ref: Version | str | int, end: Version) -> str:
    """Name the branch a promote would move: the one named as the end, or one ending there."""
    names = list(Branch.objects.filter(stream=stream, head=end).values_list("name", flat=True))
    names = [n for n in names if not n.startswith("replay/")]
    if isinstance(ref, str) and ref.strip() in names:
        return ref.strip()
    if MAIN in names:
        return MAIN
    return sorted(names)[0] if names else ""


def oldest_start(stream: Stream, end: Version) -> Version | None:
    """The oldest version a replay up to ``end`` can start from: None (the root) when no
    version on the way down was released, else the oldest kept version of the end's
    first-parent line above the newest released one. (A side branch merged in may hold
    released versions too; ``start_replay`` still checks the whole range.)"""
    released = set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
    )
    if not released:
        return None
    if end.pk in released:
        raise StateReleased(f"version {end.pk} was released by the retention policy")
    graph = graph_for(stream)
    node = end.pk
    while True:
        parents = graph.parents(node)
        if not parents:
            return None
        if parents[0] in released:
            return end if node == end.pk else Version.objects.get(pk=node)
        node = parents[0]


def default_start(stream: Stream, end: str = MAIN) -> str:
    """What the replay form offers as its start: the root, or the oldest version a replay
    up to ``end`` can start from on a stream whose retention released the oldest ones."""
    head = Branch.objects.filter(stream=stream, name=end).select_related("head").first()
    if head is None:
        return ROOT
    try:
        start = oldest_start(stream, head.head)
    except StateReleased:
        return ROOT
    return ROOT if start is None else str(start.pk)


def event_types(stream: Stream, limit: int = 200) -> list[str]:
    """The event types the stream holds, sorted (at most ``limit``): what can be skipped."""
    query = Event.objects.filter(stream=stream).values_list("type", flat=True)
    return list(query.distinct().order_by("type")[:limit])


def unknown_types(stream: Stream, types: Iterable[str]) -> list[str]:
    """The types among ``types`` no event of the stream has: most likely typos."""
    wanted = sorted({t.strip() for t in types if t.strip()})
    known = set(
        Event.objects.filter(stream=stream, type__in=wanted)
        .values_list("type", flat=True)
        .distinct()
    )
    return [t for t in wanted if t not in known]


def _event_ids(values: Iterable[str | uuid.UUID]) -> list[str]:
    ids = []
    for value in values:
        try:
            ids.append(str(uuid.UUID(str(value).strip())))
        except ValueError:
            raise InvalidEvent(f"{value!r} is not an event id") from None
    return ids


def start_replay(
    stream: Stream,
    *,
    end: Version | str | int,
    start: Version | str | int | None = None,
    skip_types: Sequence[str] = (),
    skip_events: Sequence[str | uuid.UUID] = (),
    until: datetime | None = None,
    reducer_version: int | None = None,
    upcast: bool = False,
    actor: str = "",
) -> Replay:
    """Record a replay and its task message in one transaction; a worker runs it.

    ``start`` is a version or None (or "root") for the root; ``end`` a version,
    usually a branch name. With ``upcast``, events are folded in their type's newest
    registered shape (``continust.schemas.upcasting``), so the result shows what the
    schema changes would have changed. Nothing is recorded when the request is invalid.
    """
    upcast_to = _upcast_targets(stream) if upcast else None
    end_version = _resolve(stream, end)
    if end_version is None:
        raise InvalidEvent("a replay needs an end version")
    start_version = _resolve(stream, start)
    if reducer_version is not None:
        get_reducer(stream.reducer, reducer_version)
    if until is not None and timezone.is_naive(until):
        until = until.replace(tzinfo=UTC)
    types = sorted({t.strip() for t in skip_types if t.strip()})
    if start_version is not None and start_version.generation >= end_version.generation:
        raise InvalidEvent(
            f"version {start_version.pk} is not an ancestor of version "
            f"{end_version.pk}: nothing to replay"
        )
    planned = plan_range(stream, start_version, end_version, limit=REQUEST_PLAN_LIMIT)
    wanted = ([start_version.pk] if start_version is not None else []) + (
        list(planned.ids) if planned is not None else []
    )
    with transaction.atomic():
        # Under the stream's lock a compaction's chunk either released part of the range
        # already (refused here) or sees this replay and leaves its range alone.
        lock_stream(stream)
        # A stream compaction never touched has nothing released: skip the range's check.
        released = (
            ReleasedVersion.objects.filter(version_id__in=wanted).count()
            if ReleasedVersion.objects.filter(run__stream=stream).exists()
            else 0
        )
        if released:
            raise StateReleased(
                f"the range passes {released} version(s) whose events the "
                "retention policy released; replay from a kept version"
                + _oldest_hint(stream, end_version)
            )
        replay = Replay.objects.create(
            stream=stream,
            start=start_version,
            end=end_version,
            branch=_branch_to_promote(stream, end, end_version),
            skip_types=types,
            skip_events=_event_ids(skip_events),
            until=until,
            reducer_version=reducer_version,
            upcast_to=upcast_to,
            actor=actor,
            total=len(planned) if planned is not None else 0,
        )
        if Branch.objects.filter(stream=stream, name=replay.shadow_branch).exists():
            raise InvalidEvent(f"stream {stream.name} already has a branch {replay.shadow_branch}")
        outbox.enqueue(TASK, [replay.pk], key=REPLAYS.key(replay))
    return replay


def _upcast_targets(stream: Stream) -> dict[str, int]:
    """The versions a replay with upcasting reads each type in: the newest registered."""
    project = Project.objects.get(pk=stream.project_id)
    targets = newest_versions(registry_of(project))
    if not any(v > 1 for v in targets.values()):
        raise InvalidEvent(
            f"project {project.slug} has no event type evolved past version 1: "
            "there is nothing to upcast"
        )
    return targets


def _oldest_hint(stream: Stream, end: Version) -> str:
    try:
        start = oldest_start(stream, end)
    except StateReleased:
        return ""
    if start is None:
        return ""
    if start.pk == end.pk:
        return f" (version {end.pk} has nothing kept before it to replay)"
    return f": the oldest a replay up to version {end.pk} can start from is version {start.pk}"


def get_replay(project: Project, replay_id: int | str) -> Replay:
    """Return a replay of the project by id."""
    number = parse_number(replay_id, "replay id")
    replay = (
        Replay.objects.select_related("stream__project", "start", "end", "shadow_head")
        .filter(pk=number, stream__project=project)
        .first()
    )
    if replay is None:
        raise NotFound(f"project {project.slug} has no replay {number}")
    return replay


def replays_of(project: Project, stream: Stream | None = None) -> list[Replay]:
    """Return a project's replays (or one stream's), newest first."""
    query = Replay.objects.filter(stream__project=project).select_related("stream")
    if stream is not None:
        query = query.filter(stream=stream)
    return list(query.order_by("-id"))


def cancel(replay: Replay, *, actor: str = "") -> Replay:
    """Cancel a replay: at once when no worker holds it, else at the worker's next commit."""
    now = timezone.now()
    with transaction.atomic():
        current = Replay.objects.select_for_update().get(pk=replay.pk)
        if current.finished:
            raise InvalidEvent(f"replay {replay.pk} is already {current.status}")
        current.cancel_requested = True
        changed = ["cancel_requested"]
        if not leases.is_live(current, now):
            current.status = ReplayStatus.CANCELLED
            current.finished_at = now
            changed += ["status", "finished_at"]
        current.save(update_fields=changed)
    log.info("replay %s: cancel requested by %s", replay.pk, actor or "someone")
    return current


def promote(replay: Replay, *, actor: str = "") -> Branch:
    """Move the replayed branch onto the replay's result, recorded as reason "promote".

    The branch moves to a new promote version whose parents are the shadow head and
    the branch's old head, with the shadow head's state (``git merge -s ours``), so
    the old head stays an ancestor of the branch (a fast-forward when it already is).
    Refused unless the replay is done and the branch still points where the replay
    ended: promoting over events appended since would drop them from the branch.
    """
    with transaction.atomic():
        current = Replay.objects.select_for_update().select_related("stream").get(pk=replay.pk)
        if current.status != ReplayStatus.DONE:
            raise InvalidEvent(
                f"replay {replay.pk} is {current.status}; only a done replay can be promoted"
            )
        if current.promoted_at is not None:
            raise InvalidEvent(f"replay {replay.pk} was already promoted")
        if current.discarded_at is not None:
            raise InvalidEvent(f"replay {replay.pk} was discarded; replay again to promote")
        if not current.branch:
            raise InvalidEvent(
                f"replay {replay.pk} ended at version {current.end_id}, which no "
                "branch pointed at; fork its shadow branch instead"
            )
        stream = lock_stream(current.stream)
        shadow = Branch.objects.filter(stream=stream, name=current.shadow_branch).first()
        if shadow is None:
            raise InvalidEvent(f"replay {replay.pk} made no versions; there is nothing to promote")
        target = Branch.objects.filter(stream=stream, name=current.branch).first()
        if target is None:
            raise NotFound(f"stream {stream.name} has no branch {current.branch!r} any more")
        if target.head_id != current.end_id:
            raise ConcurrencyConflict(
                f"{target.name} moved from version {current.end_id}, where the replay ended, to "
                f"version {target.head_id}; replay again up to its new head",
                current_head=target.head_id,
            )
        head = shadow.head
        if not graph_for(stream).is_ancestor(target.head_id, head.pk):
            head = _promote_version(stream, current, shadow.head, target.head, actor=actor)
        branch = move_branch(
            stream, target.name, head, reason="promote", actor=actor, branch=target
        )
        current.promoted_at = timezone.now()
        current.promoted_by = actor
        current.save(update_fields=["promoted_at", "promoted_by"])
    return branch


@dataclass(frozen=True)
class Discard:
    """What discarding a replay's shadow branch gives up, as a confirmation names it."""

    replay: int
    shadow_branch: str
    versions: int
    policy: str
    releasable: bool  # the stream's policy releases what no branch keeps

    @property
    def consequence(self) -> str:
        if self.releasable:
            return "the next compaction may release them"
        return f"the stream's policy ({self.policy}) releases nothing, so they stay stored"

    def line(self) -> str:
        """What a discard will do, as a confirmation asks it."""
        return (
            f"discarding replay {self.replay} gives up branch {self.shadow_branch}: "
            f"retention stops keeping its {self.versions:,} version(s); {self.consequence}"
        )

    def done(self) -> str:
        """What a discard did."""
        return (
            f"replay {self.replay} discarded: retention no longer keeps the "
            f"{self.versions:,} version(s) of branch {self.shadow_branch}; {self.consequence}"
        )


def discard_preview(replay: Replay) -> Discard:
    """Say what discarding the replay would do, or refuse as ``discard`` would."""
    _check_discardable(replay)
    policy = policy_of(replay.stream)
    return Discard(
        replay=replay.pk,
        shadow_branch=replay.shadow_branch,
        versions=Version.objects.filter(
            stream_id=replay.stream_id, branch=replay.shadow_branch
        ).count(),
        policy=policy.describe(),
        releasable=policy.ephemeral,
    )


def _check_discardable(replay: Replay) -> None:
    if not replay.finished:
        raise InvalidEvent(f"replay {replay.pk} is {replay.status}; cancel it before discarding")
    if replay.promoted_at is not None:
        raise InvalidEvent(
            f"replay {replay.pk} was promoted: its versions are part of {replay.branch}'s history"
        )
    if replay.discarded_at is not None:
        raise InvalidEvent(f"replay {replay.pk} was already discarded")


def discard(replay: Replay, *, actor: str) -> Discard:
    """Give up a finished, unpromoted replay's shadow branch: retention stops keeping it.

    The versions stay (the log refuses deletes) until a compaction under an ephemeral
    policy releases them; the discard is recorded in the project's audit stream.
    """
    with transaction.atomic():
        current = (
            Replay.objects.select_for_update().select_related("stream__project").get(pk=replay.pk)
        )
        lock_stream(current.stream)
        preview = discard_preview(current)
        current.discarded_at = timezone.now()
        current.discarded_by = actor[:200]
        current.save(update_fields=["discarded_at", "discarded_by"])
        trail.record(
            current.stream.project,
            DISCARD_EVENT,
            {
                "stream": current.stream.name,
                "replay": current.pk,
                "shadow_branch": current.shadow_branch,
                "shadow_head": current.shadow_head_id,
                "versions": preview.versions,
            },
            actor=actor,
        )
    replay.discarded_at, replay.discarded_by = current.discarded_at, current.discarded_by
    return preview


def _promote_version(
    stream: Stream, replay: Replay, shadow_head: Version, old_head: Version, *, actor: str
) -> Version:
    """Write the version a promote moves the branch to: parents the shadow head and the
    old head, state the shadow head's, folded by ``ours`` from an event that says so."""
    event = validate_event(
        NewEvent(
            type=PROMOTE_EVENT,
            payload={
                "replay": replay.pk,
                "branch": replay.branch,
                "parents": [shadow_head.digest, old_head.digest],
            },
            actor=actor,
        )
    )
    batch = Batch(stream)
    batch.add_version(
        batch.add_event(event),
        [shadow_head, old_head],
        state_of(shadow_head.pk),
        reducer=PROMOTE_REDUCER,
        reducer_version=1,
        branch=replay.branch,
        state_hash=shadow_head.state_id,
    )
    (version,) = batch.commit()
    return version


def shadow_diff(replay: Replay) -> list[Change]:
    """Return the structural diff from the replayed end's state to the shadow head's."""
    if replay.shadow_head_id is None:
        return []
    states = states_of([replay.end_id, replay.shadow_head_id])
    return diff(states[replay.end_id], states[replay.shadow_head_id])


# Progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a replay is, as the progress bar and ``replay --wait`` show it."""

    status: str
    label: str
    done: int
    total: int
    written: int
    rate: float | None
    queued: bool  # the request waits in the outbox: the broker could not be reached
    finished: bool

    @property
    def percent(self) -> int:
        if self.total == 0:
            return 100 if self.finished else 0
        return min(100, self.done * 100 // self.total)

    def line(self) -> str:
        rate = f", {self.rate:,.0f} events/s" if self.rate else ""
        return f"{self.label}: {self.done:,}/{self.total:,} ({self.percent}%){rate}"


def progress(replay: Replay) -> Progress:
    """Return the replay's progress as last committed."""
    label = str(ReplayStatus(replay.status).label)
    queued = False
    if replay.status == ReplayStatus.WAITING:
        message = outbox.pending(REPLAYS.key(replay))
        queued = message is not None and bool(message.last_error)
        if queued:
            label = "waiting for a worker (the task queue is unreachable; it is sent when back)"
    elif replay.status == ReplayStatus.RUNNING and not leases.is_live(replay):
        label = "waiting for a worker to resume it"
    elif replay.status == ReplayStatus.RUNNING and replay.total == 0:
        label = "planning the range"
    rate = None
    if replay.resumed_at and replay.progress_at and replay.progress_at > replay.resumed_at:
        seconds = (replay.progress_at - replay.resumed_at).total_seconds()
        rate = (replay.done - replay.resumed_done) / seconds
    return Progress(
        status=replay.status,
        label=label,
        done=replay.done,
        total=replay.total,
        written=replay.written,
        rate=rate,
        queued=queued,
        finished=replay.finished,
    )


def replay_record(replay: Replay) -> dict[str, Any]:
    """Return a replay as a JSON-ready dict."""
    state = progress(replay)
    return {
        "id": replay.pk,
        "stream": replay.stream.name,
        "status": replay.status,
        "start": replay.start_id,
        "end": replay.end_id,
        "branch": replay.branch,
        "shadow_branch": replay.shadow_branch,
        "shadow_head": replay.shadow_head_id,
        "skip_types": replay.skip_types,
        "skip_events": replay.skip_events,
        "until": canonical.timestamp_text(replay.until) if replay.until else None,
        "reducer_version": replay.reducer_version,
        "upcast_to": replay.upcast_to,
        "done": replay.done,
        "total": replay.total,
        "written": replay.written,
        "rate": round(state.rate, 1) if state.rate else None,
        "error": replay.error or None,
        "error_event": str(replay.error_event) if replay.error_event else None,
        "promoted": replay.promoted_at is not None,
        "discarded": replay.discarded_at is not None,
        "actor": replay.actor,
    }


# Running ---------------------------------------------------------------------------------


def take(replay_id: int, *, worker: str = "") -> Lease | None:
    """Claim the replay for this run unless a live lease holds it (``leases.claim``)."""
    now = timezone.now()
    return leases.claim(
        REPLAYS,
        replay_id,
        worker=worker,
        now=now,
        resumed_at=now,
        resumed_done=F("done"),
        started_at=Coalesce("started_at", now),
    )


def claim(replay_id: int, *, worker: str = "") -> int | None:
    """Claim the replay unless a live lease holds it; return the fencing token, or None."""
    lease = take(replay_id, worker=worker)
    return None if lease is None else lease.fence


def run(replay_id: int, *, worker: str = "") -> str:
    """Run or resume a replay here; return its outcome ("done", "failed", "skipped", ...)."""
    lease = take(replay_id, worker=worker)
    if lease is None:
        return SKIPPED
    replay = Replay.objects.select_related("stream", "start", "end").get(pk=replay_id)
    job = _Run(replay, lease)
    try:
        if replay.attempts > MAX_ATTEMPTS:
            job.fail(f"given up after {MAX_ATTEMPTS} attempts", None)
            return ReplayStatus.FAILED
        try:
            job.plan()
        except ContinustError as err:
            job.fail(str(err), None)
            return ReplayStatus.FAILED
        return job.run()
    except _Stopped as stop:
        return stop.outcome
    except LeaseLost as err:
        log.warning("replay %s: %s", replay_id, err)
        return LOST


def resend_stale() -> int:
    """Send again the replays nobody holds (``leases.resend_stale`` for replays alone)."""
    return leases.resend_stale(REPLAYS)


@dataclass(slots=True)
class _Node:
    """A version replicas are built on: a replica (``id`` None until committed) or an original."""

    id: int | None
    digest: str
    generation: int
    state_hash: str
    state: Any = None


@dataclass(slots=True)
class _Row:
    """What folding a version of the range needs of it and of its event."""

    event_position: int
    state_hash: str
    reducer: str
    reducer_version: int
    event_id: str
    type: str
    skipped: bool  # by the replay's filters: its type, its id or its time
    payload: Any  # None when skipped
    actor: str
    event_hash: str


# The rows of a chunk on PostgreSQL, filters applied in SQL and payloads left as text:
# loading is a large part of a replay, and the ORM's conversions are most of that.
_CHUNK_SQL = """
SELECT v.id, v.event_id, v.state_id, v.reducer, v.reducer_version, e.id::text, e.type,
       skip.skipped, CASE WHEN skip.skipped THEN NULL ELSE e.payload::text END, e.actor, e.hash
FROM continust_version v
JOIN continust_event e ON e.position = v.event_id
CROSS JOIN LATERAL (SELECT (e.type = ANY(%s::text[]) OR e.id = ANY(%s::uuid[])
                            OR COALESCE(e.timestamp > %s::timestamptz, FALSE)) AS skipped) skip
WHERE v.id = ANY(%s::bigint[])
"""


@dataclass(slots=True)
class _Pending:
    node: _Node
    event_position: int
    parents: list[_Node]
    reducer: str
    reducer_version: int
    new_state: str | None  # the state's canonical text when no stored state has its hash


@dataclass
class _Run:
    """One claim's run of a replay: fold chunks in memory, commit each with its progress."""

    replay: Replay
    lease: Lease
    span: ReplayRange = field(default_factory=lambda: ReplayRange([], []))
    position: int = 0
    written: int = 0
    head: _Node | None = None
    mapped: dict[int, _Node | None] = field(default_factory=dict)
    uses: Counter[int] = field(default_factory=Counter)
    shared: dict[int, _Node] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    states_written: int = 0  # by this run: new states (another reducer version's)
    # Time since the progress was last recorded: when that was, and how much of it went
    # waiting for the stream's lock and pausing between chunks (the rest was busy).
    booked_at: float = field(default_factory=time.monotonic)
    blocked: float = 0.0
    throttled: float = 0.0

    def __post_init__(self) -> None:
        replay = self.replay
        self.stream = replay.stream
        self.skip_types = set(replay.skip_types)
        self.skip_events = {uuid.UUID(e) for e in replay.skip_events}
        self.chunk = settings.CONTINUST_REPLAY_CHUNK_EVENTS
        self.delay = settings.CONTINUST_REPLAY_CHUNK_DELAY_MS / 1000
        self.upcast_to: dict[str, int] | None = replay.upcast_to
        self.registry = (
            registry_of(Project.objects.get(pk=self.stream.project_id))
            if self.upcast_to is not None
            else None
        )

    # Planning and resuming

    def plan(self) -> None:
        span = plan_range(self.stream, self.replay.start, self.replay.end)
        assert span is not None
        self.span = span
        self.uses = Counter(p for ps in span.parents for p in ps)
        if self.replay.total != len(span):  # a long range: the request left it to the worker
            Replay.objects.filter(pk=self.replay.pk, fence=self.lease.fence).update(total=len(span))
            self.replay.total = len(span)
        if self.replay.cursor:
            self._resume()

    def _resume(self) -> None:
        """Rebuild which node stands for each original up to the cursor, folding nothing."""
        replay = self.replay
        position = bisect.bisect_right(self.span.ids, replay.cursor)
        replicas: dict[int, deque[_Node]] = defaultdict(deque)
        for vid, event, digest, generation, state_hash in (
            Version.objects.filter(stream=self.stream, branch=replay.shadow_branch)
            .order_by("id")
            .values_list("id", "event_id", "digest", "generation", "state_id")
        ):
            replicas[event].append(_Node(vid, digest, generation, state_hash))
        events = dict(
            Version.objects.filter(
                stream=self.stream, id__gte=self.span.ids[0], id__lte=replay.cursor
            ).values_list("id", "event_id")
        )
        for index in range(position):
            vid = self.span.ids[index]
            nodes = self._parents(self.span.parents[index])
            waiting = replicas.get(events[vid])
            node = waiting.popleft() if waiting else (nodes[0] if nodes else None)
            self._keep(vid, node)
        self.position = position
        self.written = replay.written
        if replay.shadow_head_id is not None:
            self.head = self._original(replay.shadow_head_id)

    # Folding

    def run(self) -> str:
        total = len(self.span)
        while self.position < total:
            ids = self.span.ids[self.position : self.position + self.chunk]
            rows = self._load(ids)
            for vid in ids:
                row = rows[vid]
                try:
                    self._replay(vid, row)
                except ContinustError as err:
                    self.fail(str(err), uuid.UUID(row.event_id))
                    return ReplayStatus.FAILED
                self.position += 1
            outcome = self._commit(final=self.position == total)
            if outcome != ReplayStatus.RUNNING:
                return outcome
            if self.delay:
                paused = time.monotonic()
                time.sleep(self.delay)
                self.throttled += time.monotonic() - paused
        if total == 0:
            return self._commit(final=True)
        return ReplayStatus.DONE

    def _load(self, ids: list[int]) -> dict[int, _Row]:
        if on_postgresql():
            with connection.cursor() as cursor:
                cursor.execute(
                    _CHUNK_SQL,
                    [sorted(self.skip_types), self.replay.skip_events, self.replay.until, ids],
                )
                return {
                    vid: _Row(
                        event,
                        state,
                        reducer,
                        version,
                        event_id,
                        type_,
                        skipped,
                        None if payload is None else json.loads(payload),
                        actor,
                        digest,
                    )
                    for (
                        vid,
                        event,
                        state,
                        reducer,
                        version,
                        event_id,
                        type_,
                        skipped,
                        payload,
                        actor,
                        digest,
                    ) in cursor.fetchall()
                }
        rows = Version.objects.filter(pk__in=ids).values_list(
            "id",
            "event_id",
            "state_id",
            "reducer",
            "reducer_version",
            "event__id",
            "event__type",
            "event__timestamp",
            "event__payload",
            "event__actor",
            "event__hash",
        )
        until = self.replay.until
        return {
            vid: _Row(
                event,
                state,
                reducer,
                version,
                str(event_id),
                type_,
                type_ in self.skip_types
                or event_id in self.skip_events
                or (until is not None and moment > until),
                payload,
                actor,
                digest,
            )
            for (
                vid,
                event,
                state,
                reducer,
                version,
                event_id,
                type_,
                moment,
                payload,
                actor,
                digest,
            ) in rows
        }

    def _replay(self, vid: int, row: _Row) -> None:
        nodes = self._parents(self.span.parents[self.position])
        if row.skipped or (row.reducer == MERGE_REDUCER and len(nodes) < 2):
            self._keep(vid, nodes[0] if nodes else None)
            return
        reducer, version = row.reducer, row.reducer_version
        if reducer == self.stream.reducer and self.replay.reducer_version is not None:
            version = self.replay.reducer_version
        if self.upcast_to is not None and row.payload is not None:
            row.payload = upcast_payload(
                self.registry,
                row.type,
                row.payload,
                row.event_position,
                to=self.upcast_to.get(row.type, 0),
            ).payload
        if reducer == MERGE_REDUCER:
            self._flush()  # merge bases are found in the stored graph, replicas included
            state = derive_state(
                graph_for(self.stream),
                self._state_of,
                reducer=reducer,
                reducer_version=version,
                parents=[n.id for n in nodes if n.id is not None],
                event_id=row.event_id,
                type=row.type,
                payload=row.payload,
                actor=row.actor,
            )
            state_hash, text = canonical.hashed_state(state)
        else:
            base = self._state(nodes[0]) if nodes else {}
            state = fold_event(
                reducer,
                version,
                base,
                event_id=row.event_id,
                type=row.type,
                payload=row.payload,
                actor=row.actor,
            )
            state_hash, text = hashed_storable_state(
                state, reducer=reducer, reducer_version=version, event_id=row.event_id
            )
        node = _Node(
            None,
            canonical.version_digest(
                event_hash=row.event_hash,
                parents=[n.digest for n in nodes],
                state=state_hash,
                reducer=reducer,
                reducer_version=version,
            ),
            1 + max((n.generation for n in nodes), default=-1),
            state_hash,
            state,
        )
        self.pending.append(
            _Pending(
                node,
                row.event_position,
                nodes,
                reducer,
                version,
                # With upcasting every replica's state is stored: folding it again on
                # demand would read the stored payloads.
                new_state=(
                    text if state_hash != row.state_hash or self.upcast_to is not None else None
                ),
            )
        )
        self.head = node
        self._keep(vid, node)

    def _parents(self, parents: tuple[int, ...]) -> list[_Node]:
        """Return the nodes standing for a version's parents, each once, and release them."""
        nodes: list[_Node] = []
        for parent in parents:
            node = self.mapped[parent] if parent in self.mapped else self._original(parent)
            if node is not None and all(node is not n for n in nodes):
                nodes.append(node)
            self.uses[parent] -= 1
            if self.uses[parent] <= 0 and parent != self.replay.end_id:
                self.mapped.pop(parent, None)
                del self.uses[parent]
        return nodes

    def _keep(self, vid: int, node: _Node | None) -> None:
        if self.uses.get(vid, 0) > 0 or vid == self.replay.end_id:
            self.mapped[vid] = node

    def _original(self, vid: int) -> _Node:
        if vid not in self.shared:
            digest, generation, state_hash = Version.objects.values_list(
                "digest", "generation", "state_id"
            ).get(pk=vid)
            self.shared[vid] = _Node(vid, digest, generation, state_hash)
        return self.shared[vid]

    def _state(self, node: _Node) -> Any:
        if node.state is None:
            # A replica carries its state (a JSON object, never None): only an original,
            # which has an id, lands here.
            assert node.id is not None
            stored = State.objects.filter(pk=node.state_hash).values_list("data", flat=True)
            node.state = stored[0] if stored else state_of(node.id)
        return node.state

    def _state_of(self, version_id: int) -> Any:
        return state_of(version_id)

    # Committing

    def _flush(self) -> None:
        if self.pending:
            outcome = self._commit(final=False)
            if outcome != ReplayStatus.RUNNING:
                raise _Stopped(outcome)

    def _commit(self, *, final: bool) -> str:
        """Write the pending replicas and the progress in one transaction, under the token."""
        with transaction.atomic():
            if self._cancelled():
                return ReplayStatus.CANCELLED
            # A replay's output can always be made again, and its progress commits with
            # it: a database crash may lose the last chunks, never make them half-written.
            relaxed_commit()
            if on_postgresql():
                # The foreign keys are checked as rows arrive rather than all at COMMIT, so
                # the progress shows as soon as it is recorded.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            waited = time.monotonic()
            stream = lock_stream(self.stream)
            self.blocked += time.monotonic() - waited
            self._write(timezone.now())
            head = self.mapped.get(self.replay.end_id) if final else self.head
            if head is not None and head.id is not None and head.id != self.replay.shadow_head_id:
                move_branch(
                    stream,
                    self.replay.shadow_branch,
                    Version.objects.get(pk=head.id),
                    reason="replay",
                    actor=self.replay.actor,
                )
                self.replay.shadow_head_id = head.id
            self._record(final)
        return ReplayStatus.DONE if final else ReplayStatus.RUNNING

    def _cancelled(self) -> bool:
        """Lock the replay row and check the token; finish the replay if a cancel was asked."""
        current = leases.hold(self.lease, "cancel_requested")
        if current["cancel_requested"]:
            leases.release(self.lease, status=ReplayStatus.CANCELLED, finished_at=timezone.now())
        return bool(current["cancel_requested"])

    def _record(self, final: bool) -> None:
        """Record the progress and renew the lease (or finish), in the chunk's transaction."""
        now = timezone.now()
        changes: dict[str, Any] = {
            "cursor": self.span.ids[self.position - 1] if self.position else 0,
            "done": self.position,
            "written": self.written,
            "shadow_head_id": self.replay.shadow_head_id,
            "progress_at": now,
            **self._spent(),
        }
        if final:
            leases.release(self.lease, status=ReplayStatus.DONE, finished_at=now, **changes)
            written, states = self.written, self.states_written

            def refresh() -> None:
                statistics.refresh(written, statistics.REPLAYED)
                statistics.refresh(states, ["continust_state"])

            transaction.on_commit(refresh)
        else:
            leases.renew(self.lease, now=now, **changes)

    def _spent(self) -> dict[str, Any]:
        """The time since the last record, by state, as increments of the row's totals."""
        at = time.monotonic()
        elapsed = at - self.booked_at
        blocked, throttled = min(self.blocked, elapsed), min(self.throttled, elapsed)
        busy = max(elapsed - blocked - throttled, 0.0)
        self.booked_at, self.blocked, self.throttled = at, 0.0, 0.0
        return {
            "busy_seconds": F("busy_seconds") + busy,
            "blocked_seconds": F("blocked_seconds") + blocked,
            "throttled_seconds": F("throttled_seconds") + throttled,
        }

    def _write(self, now: datetime) -> None:
        if not self.pending:
            return
        for pending, vid in zip(self.pending, reserve_ids(Version, len(self.pending)), strict=True):
            pending.node.id = vid
        states = {
            p.node.state_hash: (p.node.state, p.new_state) for p in self.pending if p.new_state
        }
        insert_state_texts(states)
        self.states_written += len(states)
        if on_postgresql():
            _copy_versions(self.stream, self.replay.shadow_branch, self.pending, now)
        else:
            _insert_versions(self.stream, self.replay.shadow_branch, self.pending, now)
        self.written += len(self.pending)
        self.pending = []

    def fail(self, error: str, event: uuid.UUID | None) -> None:
        """Record the failure; the versions folded since the last commit are dropped."""
        self.pending = []
        leases.release(
            self.lease,
            status=ReplayStatus.FAILED,
            error=error[:4000],
            error_event=event,
            finished_at=timezone.now(),
            **self._spent(),
        )


def _insert_versions(stream: Stream, branch: str, pending: list[_Pending], now: datetime) -> None:
    versions = [
        Version(
            id=p.node.id,
            stream_id=stream.pk,
            event_id=p.event_position,
            state_id=p.node.state_hash,
            first_parent_id=_id(p.parents[0]) if p.parents else None,
            generation=p.node.generation,
            digest=p.node.digest,
            key=None,
            branch=branch,
            reducer=p.reducer,
            reducer_version=p.reducer_version,
            created_at=now,
        )
        for p in pending
    ]
    insert_rows(Version, versions)
    insert_rows(
        VersionParent,
        [
            VersionParent(child_id=_id(p.node), parent_id=_id(parent), index=index)
            for p in pending
            for index, parent in enumerate(p.parents)
            if index
        ],
    )


def _id(node: _Node) -> int:
    assert node.id is not None, "a node is written before its children"
    return node.id


# COPY's text format for NULL.
NULL = "\\N"


def _copy_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_versions(stream: Stream, branch: str, pending: list[_Pending], now: datetime) -> None:
    """COPY the replicas (each naming its first parent) and a merge's further parent links
    in PostgreSQL's text format."""
    stamp = now.isoformat()
    prefix = f"{stream.pk}\t"
    middle = f"\t\\N\t{_copy_text(branch)}\t"
    versions = "".join(
        f"{p.node.id}\t{prefix}{p.event_position}\t{p.node.state_hash}\t"
        f"{p.parents[0].id if p.parents else NULL}\t{p.node.generation}\t"
        f"{p.node.digest}{middle}{_copy_text(p.reducer)}\t{p.reducer_version}\t{stamp}\n"
        for p in pending
    )
    links = "".join(
        f"{p.node.id}\t{parent.id}\t{index}\n"
        for p in pending
        for index, parent in enumerate(p.parents)
        if index
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY continust_version (id, stream_id, event_id, state_id, first_parent_id, "
            "generation, digest, key, branch, reducer, reducer_version, created_at) FROM STDIN"
        ) as copy:
            copy.write(versions)
        if links:
            with cursor.cursor.copy(
                'COPY continust_versionparent (child_id, parent_id, "index") FROM STDIN'
            ) as copy:
                copy.write(links)

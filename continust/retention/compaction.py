"""Compaction: bring a stream's stored states and payloads into line with its policy.

A compaction plans, then works in chunks, each one transaction:

1. **snapshots**: store the states the policy wants stored and that are missing
   (a selective stream's grid, heads, merge bases and reviewed versions; under
   ephemeral, every kept version that would otherwise be recomputed through a
   run about to be released; under eternal, every missing state);
2. **release**: selective drops the stored states outside its snapshots (they stay
   recomputable); ephemeral releases each run beyond the horizon: its events'
   payloads become JSON ``null`` (when no kept version shares the event), states
   no kept version shares are deleted, and one ``ReleasedRun`` with the Merkle root
   of the run's event hashes stands for it;
3. **finish**: bytes after, and a ``retention.compacted`` event in the project's
   audit stream naming what was released and the Merkle root over the runs' roots.

The plan is a pure function of the database and the compaction's pinned ``upto``
and ``cutoff``, so a worker that dies mid-way leaves a cursor, and the next
delivery plans the same work and resumes after it. A worker holds the compaction
under a fenced lease (``continust.jobs.leases``); each chunk writes its work and
moves the cursor in the same transaction, after checking the fence, under the
stream's write lock and a ``ReleasePermit`` that the database triggers require
(``continust.log.triggers``). A holder whose lease was taken over writes nothing
more, its failure included.

What is never released: branch heads, the merge bases of any two heads, every
version in a review's range (open or closed), and the versions replays start from,
end at or made, until an admin discards the replay (``continust.replays.replay.discard``):
a discarded replay's shadow branch is no longer kept. An ephemeral horizon of N
versions keeps the newest N of each kept branch's own history.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from continust.audit.trail import AUDIT_STREAM, is_audit_stream, record
from continust.core.database import on_postgresql, stored_size
from continust.core.errors import ContinustError, InvalidEvent, NotFound
from continust.graph.cache import graph_for
from continust.graph.parents import children_crossing
from continust.jobs import leases, outbox
from continust.jobs.leases import Lease, LeaseLost
from continust.log import canonical, statistics
from continust.log.policy import Policy, make_policy, policy_of
from continust.log.states import store_snapshots
from continust.models import (
    Branch,
    Compaction,
    CompactionStatus,
    Event,
    ReleasedRun,
    ReleasedVersion,
    ReleasePermit,
    Replay,
    Review,
    State,
    Stream,
    Tag,
    Version,
)

log = logging.getLogger(__name__)

TASK: Final = "continust.compact"
DUE_TASK: Final = "continust.compact_due"
RECORD_EVENT: Final = "retention.compacted"
SNAPSHOTS, RELEASE, FINISH = "snapshots", "release", "finish"
PHASES: Final = (SNAPSHOTS, RELEASE, FINISH)
ACTIVE: Final = (CompactionStatus.PENDING, CompactionStatus.RUNNING)
MAX_ATTEMPTS: Final = 5
# A released run stands for at most this many versions; a longer chain is several runs.
MAX_RUN: Final = 10_000


# -- what the stream holds -------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """The bytes a stream's rows take: events, versions with their parent links, states."""

    events: int
    versions: int
    states: int

    @property
    def total(self) -> int:
        return self.events + self.versions + self.states


def footprint(stream: Stream) -> Footprint:
    """Measure the stream's rows as stored: PostgreSQL's own row sizes (after TOAST
    compression); on SQLite, the length of each row's text and a fixed 100 bytes a row."""
    if on_postgresql():
        sql = """
        SELECT
          (SELECT COALESCE(SUM(pg_column_size(e.*)), 0) FROM continust_event e
           WHERE e.stream_id = %(s)s),
          (SELECT COALESCE(SUM(pg_column_size(v.*)), 0) FROM continust_version v
           WHERE v.stream_id = %(s)s)
          + (SELECT COALESCE(SUM(pg_column_size(p.*)), 0) FROM continust_versionparent p
             JOIN continust_version v ON v.id = p.child_id WHERE v.stream_id = %(s)s),
          (SELECT COALESCE(SUM(pg_column_size(st.*)), 0) FROM continust_state st
           WHERE st.hash IN (SELECT state_id FROM continust_version WHERE stream_id = %(s)s))
        """
    else:
        sql = """
        SELECT
          (SELECT COALESCE(SUM(length(payload) + length(type) + length(actor) + 228), 0)
           FROM continust_event WHERE stream_id = %(s)s),
          (SELECT COALESCE(SUM(length(digest) + length(state_id) + length(branch) + 100), 0)
           FROM continust_version WHERE stream_id = %(s)s),
          (SELECT COALESCE(SUM(length(data) + 164), 0) FROM continust_state
           WHERE hash IN (SELECT state_id FROM continust_version WHERE stream_id = %(s)s))
        """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"s": stream.pk})
        events, versions, states = cursor.fetchone()
    return Footprint(int(events), int(versions), int(states))


def _size(column: str) -> str:
    """SQL for the bytes a stored JSON column takes (as text on SQLite)."""
    return stored_size(column)


def _sizes_of(model: type[Event] | type[State], column: str, keys: Sequence[Any]) -> dict[Any, int]:
    """The bytes ``column`` takes in each of the rows with these primary keys."""
    if not keys:
        return {}
    return dict(
        model.objects.filter(pk__in=keys)
        .annotate(size=RawSQL(_size(column), []))
        .values_list("pk", "size")
    )


# -- planning --------------------------------------------------------------------------


@dataclass
class Plan:
    """What a compaction of a stream will do, version by version; writing nothing."""

    stream: Stream
    policy: Policy
    upto: int
    cutoff: datetime | None
    snapshots: list[int] = field(default_factory=list)
    drops: list[tuple[int, str]] = field(default_factory=list)  # (version, state hash)
    runs: list[list[int]] = field(default_factory=list)  # oldest first
    protected: dict[int, str] = field(default_factory=dict)  # version -> why it stays
    bytes_released: int = 0
    uncounted: str = ""  # what the byte estimate leaves out, if anything

    @property
    def versions_released(self) -> int:
        return sum(len(run) for run in self.runs)

    def as_dict(self, limit: int = 200) -> dict[str, Any]:
        """The dry run, as the CLI, the API and the explorer show it."""
        return {
            "stream": self.stream.name,
            "policy": self.policy.as_dict(),
            "upto": self.upto,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "snapshots_stored": len(self.snapshots),
            "states_dropped": len(self.drops),
            "versions_released": self.versions_released,
            "bytes_released": self.bytes_released,
            "bytes_uncounted": self.uncounted or None,
            "runs": [
                {"first": run[0], "last": run[-1], "versions": len(run)}
                for run in self.runs[:limit]
            ],
            "runs_total": len(self.runs),
            "protected": [
                {"version": v, "reason": why} for v, why in sorted(self.protected.items())[:limit]
            ],
            "protected_total": len(self.protected),
        }


@dataclass(frozen=True)
class _Shape:
    ids: list[int]
    generation: dict[int, int]
    state: dict[int, str]
    created: dict[int, datetime]
    released: set[int]
    stored: set[str]


def _shape(stream: Stream, upto: int) -> _Shape:
    rows = list(
        Version.objects.filter(stream=stream, pk__lte=upto)
        .order_by("id")
        .values_list("id", "generation", "state_id", "created_at")
    )
    released = set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT s.hash FROM continust_state s JOIN continust_version v "
            "ON v.state_id = s.hash WHERE v.stream_id = %s AND v.id <= %s",
            [stream.pk, upto],
        )
        stored = {row[0] for row in cursor.fetchall()}
    return _Shape(
        ids=[r[0] for r in rows],
        generation={r[0]: r[1] for r in rows},
        state={r[0]: r[2] for r in rows},
        created={r[0]: r[3] for r in rows},
        released=released,
        stored=stored,
    )


def protected_versions(
    stream: Stream, *, with_ranges: bool, reviews_after: int = 0, upto: int | None = None
) -> dict[int, str]:
    """Return the versions no compaction may release, each with the reason.

    ``with_ranges`` adds every version of every review's range and of every active
    replay's range (ephemeral needs them all; selective only snapshots the ends).
    ``reviews_after`` looks only at reviews with a greater id (a chunk re-checks what
    was opened since planning). With ``upto``, a version up to it whose child is newer
    is kept too: the newer versions are not considered, and may be recomputed from it.
    """
    graph = graph_for(stream)
    keep: dict[int, str] = {}
    heads = kept_heads(stream)
    for head, name in heads.items():
        keep.setdefault(head, f"head of branch {name}")
    for a, b in itertools.combinations(sorted(heads), 2):
        _keep_bases(graph, a, b, keep, f"merge base of {heads[a]} and {heads[b]}")
    # A tag names a version for good: its state stays readable under its name.
    for tagged, tag in (
        Tag.objects.filter(stream=stream).order_by("name").values_list("version_id", "name")
    ):
        keep.setdefault(tagged, f"tagged {tag}")
    for review in Review.objects.filter(stream=stream, pk__gt=reviews_after).order_by("id"):
        why = f"in review {review.pk} ({review.title})"
        keep.setdefault(review.head_id, why)
        if review.base_id is not None:
            keep.setdefault(review.base_id, why)
        if with_ranges:
            _keep_range(graph, review.base_id, review.head_id, keep, why)
    for replay in Replay.objects.filter(stream=stream, discarded_at__isnull=True).order_by("id"):
        why = f"used by replay {replay.pk}"
        for version in (replay.start_id, replay.end_id, replay.shadow_head_id):
            if version is not None:
                keep.setdefault(version, why)
        if with_ranges and not replay.finished:
            _keep_range(graph, replay.start_id, replay.end_id, keep, why)
            for version in Version.objects.filter(
                stream=stream, branch=replay.shadow_branch
            ).values_list("id", flat=True):
                keep.setdefault(version, why)
    if upto is not None:
        for child, parent in children_crossing(stream.pk, upto):
            keep.setdefault(parent, f"parent of v{child}, newer than this compaction")
    return keep


def discarded_branches(stream: Stream) -> set[str]:
    """The shadow branches of the stream's discarded replays: retention keeps none of them."""
    return {
        f"replay/{pk}"
        for pk in Replay.objects.filter(stream=stream, discarded_at__isnull=False).values_list(
            "pk", flat=True
        )
    }


def kept_heads(stream: Stream) -> dict[int, str]:
    """The heads of the branches retention keeps (all but discarded shadow branches),
    each with a branch's name."""
    gone = discarded_branches(stream)
    heads: dict[int, str] = {}
    for head, name in (
        Branch.objects.filter(stream=stream).order_by("name").values_list("head_id", "name")
    ):
        if name not in gone:
            heads.setdefault(head, name)
    return heads


def newest_of_each_history(graph: Any, heads: Iterable[int], count: int, upto: int) -> set[int]:
    """The newest ``count`` versions (ids up to ``upto``) of each head's own history.

    Ids order parents before children, so walking a head's ancestry by the highest id
    first meets its versions newest first; each walk stops after ``count`` of them, so
    another branch's versions (a replay's shadow) never push a branch's own out.
    """
    kept: set[int] = set()
    for head in heads:
        heap, seen, taken = [-head], {head}, 0
        while heap and taken < count:
            version = -heapq.heappop(heap)
            if version <= upto:
                kept.add(version)
                taken += 1
            for parent in graph.parents(version):
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, -parent)
    return kept


def _keep_range(graph: Any, base: int | None, head: int, keep: dict[int, str], why: str) -> None:
    members = graph.ancestors(head) if base is None else graph.between(base, head)
    for version in members:
        keep.setdefault(version, why)


def _keep_bases(graph: Any, a: int, b: int, keep: dict[int, str], why: str, depth: int = 0) -> None:
    """Keep the merge bases of a and b and, for a criss-cross, the bases a merge of them
    folds against in turn (``folding.virtual_base``)."""
    bases = sorted(graph.merge_bases(a, b))
    for base in bases:
        keep.setdefault(base, why)
    if len(bases) > 1 and depth < 16:
        for x, y in itertools.pairwise(bases):
            _keep_bases(graph, x, y, keep, why, depth + 1)


def plan(
    stream: Stream,
    *,
    policy: Policy | None = None,
    upto: int | None = None,
    cutoff: datetime | None = None,
) -> Plan:
    """Plan a compaction of ``stream`` under its policy (or ``policy``): the dry run."""
    policy = policy or policy_of(stream)
    upto = _newest(stream) if upto is None else upto
    cutoff = _cutoff(policy) if cutoff is None else cutoff
    shape = _shape(stream, upto)
    graph = graph_for(stream)
    result = Plan(stream, policy, upto, cutoff)
    if policy.selective:
        _plan_selective(result, shape, graph)
    elif policy.ephemeral:
        _plan_ephemeral(result, shape, graph)
    else:
        result.snapshots = [
            v for v in shape.ids if shape.state[v] not in shape.stored and v not in shape.released
        ]
    _estimate(result, shape)
    return result


def _newest(stream: Stream) -> int:
    """The stream's newest version id (0 for none): what a compaction considers up to."""
    newest = (
        Version.objects.filter(stream=stream).order_by("-id").values_list("id", flat=True).first()
    )
    return newest or 0


def _cutoff(policy: Policy) -> datetime | None:
    """The moment an ephemeral policy's age horizon stands at now, if it has one."""
    if policy.ephemeral and policy.horizon_age is not None:
        return timezone.now() - policy.horizon_age
    return None


def _plan_selective(result: Plan, shape: _Shape, graph: Any) -> None:
    every = result.policy.snapshot_every
    keep = protected_versions(result.stream, with_ranges=False, upto=result.upto)
    for v in shape.ids:
        parents = graph.parents(v)
        if v in shape.released:
            continue
        if shape.generation[v] % every == 0 or len(parents) != 1:
            keep.setdefault(v, "snapshot" if parents else "root")
        elif parents[0] in shape.released:
            # Nothing before it can be folded again: its own state must stay.
            keep.setdefault(v, "snapshot")
    wanted = {v for v in keep if v in shape.state and v not in shape.released}
    result.snapshots = sorted(v for v in wanted if shape.state[v] not in shape.stored)
    kept_hashes = {shape.state[v] for v in wanted}
    seen: set[str] = set()
    for v in shape.ids:
        digest = shape.state[v]
        if (
            v not in wanted
            and v not in shape.released
            and digest in shape.stored
            and digest not in kept_hashes
            and digest not in seen
        ):
            seen.add(digest)
            result.drops.append((v, digest))
    result.drops = _unshared(result.stream, result.drops)
    result.protected = {
        v: why for v, why in keep.items() if why not in ("snapshot", "root") and v in shape.state
    }


def _plan_ephemeral(result: Plan, shape: _Shape, graph: Any) -> None:
    policy, cutoff = result.policy, result.cutoff
    keep = protected_versions(result.stream, with_ranges=True, upto=result.upto)
    within: set[int] | None = None
    if policy.horizon_versions is not None:
        # Counted along each kept branch's own history, not over the whole stream.
        within = newest_of_each_history(
            graph, kept_heads(result.stream), policy.horizon_versions, result.upto
        )
    beyond = [
        v
        for v in shape.ids
        if v not in shape.released
        and (within is None or v not in within)
        and (cutoff is None or shape.created[v] < cutoff)
    ]
    beyond_set = set(beyond)
    result.protected = {v: why for v, why in keep.items() if v in beyond_set}
    release = [v for v in beyond if v not in keep]
    chosen = set(release)
    run_of: dict[int, list[int]] = {}
    for v in release:
        parents = graph.parents(v)
        if (
            len(parents) == 1
            and parents[0] in run_of
            and len(run_of[parents[0]]) < MAX_RUN
            and graph.children(parents[0]) == [v]
        ):
            run = run_of[parents[0]]
            run.append(v)
        else:
            run = [v]
            result.runs.append(run)
        run_of[v] = run
    # Kept versions recomputed through a released run need their own state stored first.
    gone = chosen | shape.released
    missing = {v for v in shape.ids if v not in gone and shape.state[v] not in shape.stored}
    for v in sorted(missing):
        node = v
        while node in missing:
            parents = graph.parents(node)
            if len(parents) != 1 or parents[0] in gone:
                result.snapshots.append(v)
                break
            node = parents[0]


def _unshared(stream: Stream, drops: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Leave out states another stream's versions point at too."""
    shared: set[str] = set()
    hashes = [digest for _, digest in drops]
    for start in range(0, len(hashes), 5000):
        shared |= set(
            Version.objects.filter(state_id__in=hashes[start : start + 5000])
            .exclude(stream=stream)
            .values_list("state_id", flat=True)
        )
    return [(v, digest) for v, digest in drops if digest not in shared]


def _estimate(result: Plan, shape: _Shape) -> None:
    """Add up the bytes the plan takes off the stream's footprint (``footprint``, which
    the compaction measures before and after): each released event's payload, counted
    once and only when no kept version shares the event, less the JSON ``null`` left in
    its place, and the whole rows of the states it deletes (two queries over the stream).
    The snapshots stored first are not counted: their size is known once computed."""
    if result.snapshots:
        result.uncounted = (
            f"the estimate does not count the {len(result.snapshots):,} snapshot(s) stored "
            "first, which add bytes"
        )
    if not result.drops and not result.runs:
        return
    payload, event_of, state = _sizes(result.stream, result.upto)
    hashes = {digest for _, digest in result.drops}
    if result.runs:
        released = {v for run in result.runs for v in run}
        kept = {shape.state[v] for v in shape.ids if v not in released}
        hashes |= {shape.state[v] for v in released if shape.state[v] not in kept}
        kept_events = {
            event_of[v] for v in shape.ids if v not in released and v not in shape.released
        }
        events = {event_of[v] for v in released} - kept_events
        result.bytes_released += sum(payload.get(e, 0) for e in events)
    result.bytes_released += sum(state.get(h, 0) for h in hashes)


def _sizes(stream: Stream, upto: int) -> tuple[dict[int, int], dict[int, int], dict[str, int]]:
    """Per event, the bytes its row loses when the payload becomes ``null``; each
    version's event; per state, the bytes its row takes. As ``footprint`` measures."""
    if on_postgresql():
        payload_size = "pg_column_size(e.payload) - pg_column_size('null'::jsonb)"
        state_size = "pg_column_size(s.*)"
    else:
        payload_size = "length(e.payload) - length('null')"
        state_size = "length(s.data) + 164"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT v.id, e.position, {payload_size} FROM continust_version v "
            "JOIN continust_event e ON e.position = v.event_id "
            "WHERE v.stream_id = %s AND v.id <= %s",
            [stream.pk, upto],
        )
        payload: dict[int, int] = {}
        event_of: dict[int, int] = {}
        for version, event, size in cursor.fetchall():
            event_of[version] = event
            payload[event] = max(0, int(size or 0))
        cursor.execute(
            f"SELECT DISTINCT s.hash, {state_size} FROM continust_state s "
            "JOIN continust_version v ON v.state_id = s.hash "
            "WHERE v.stream_id = %s AND v.id <= %s",
            [stream.pk, upto],
        )
        state = dict(cursor.fetchall())
    return payload, event_of, state


# -- requesting ------------------------------------------------------------------------


COMPACTIONS = leases.register(
    leases.Kind(
        name="compaction",
        model=Compaction,
        task=TASK,
        active=Q(status__in=ACTIVE),
        lease_seconds=lambda: settings.CONTINUST_COMPACTION_LEASE_SECONDS,
        resend_seconds=lambda: settings.CONTINUST_COMPACTION_RESEND_SECONDS,
    )
)
outbox_key = COMPACTIONS.key


def request(stream: Stream, *, actor: str) -> Compaction:
    """Ask for a compaction of the stream under its current policy; one at a time.

    An active compaction of the stream is returned instead of a second one.
    """
    if is_audit_stream(stream):
        raise InvalidEvent("the audit stream is kept forever; it is not compacted")
    with transaction.atomic():
        locked = Stream.objects.select_for_update().get(pk=stream.pk)
        active = Compaction.objects.filter(stream=locked, status__in=ACTIVE).first()
        if active is not None:
            return active
        policy = policy_of(locked)
        compaction = Compaction.objects.create(
            stream=locked,
            policy=policy.as_dict(),
            upto=_newest(locked),
            cutoff=_cutoff(policy),
            requested_by=actor[:200],
        )
        outbox.enqueue(TASK, [compaction.pk], key=COMPACTIONS.key(compaction))
    return compaction


def get(stream: Stream, compaction_id: int) -> Compaction:
    found = Compaction.objects.filter(stream=stream, pk=compaction_id).first()
    if found is None:
        raise NotFound(f"stream {stream.name} has no compaction {compaction_id}")
    return found


def pinned_policy(compaction: Compaction) -> Policy:
    data = compaction.policy
    return make_policy(
        data["kind"],
        snapshot_every=data.get("snapshot_every"),
        horizon_versions=data.get("horizon_versions"),
        horizon_age=data.get("horizon_age"),
    )


# -- running ---------------------------------------------------------------------------


def run(compaction_id: int, *, chunk: int | None = None, worker: str = "") -> Compaction:
    """Run or resume a compaction here; a second delivery finds it held or done."""
    lease = leases.claim(COMPACTIONS, compaction_id, worker=worker)
    compaction = Compaction.objects.select_related("stream__project").get(pk=compaction_id)
    if lease is None:
        return compaction
    if compaction.attempts > MAX_ATTEMPTS:
        return _fail(compaction, lease, f"given up after {MAX_ATTEMPTS} attempts")
    try:
        return _Run(compaction, lease, chunk or settings.CONTINUST_COMPACTION_CHUNK).run()
    except LeaseLost:
        log.warning("compaction %s: another worker holds it now", compaction_id)
        return Compaction.objects.get(pk=compaction_id)
    except ContinustError as err:
        return _fail(compaction, lease, str(err))


def _fail(compaction: Compaction, lease: Lease, reason: str) -> Compaction:
    """Record the failure, if this run still holds the compaction; else leave it be."""
    if not leases.release(
        lease, status=CompactionStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
    ):
        log.warning("compaction %s failed (%s) after another worker took it", lease.pk, reason)
    compaction.refresh_from_db()
    return compaction


class _Run:
    def __init__(self, compaction: Compaction, lease: Lease, chunk: int) -> None:
        self.compaction = compaction
        self.stream = compaction.stream
        self.lease = lease
        self.chunk = chunk

    def run(self) -> Compaction:
        if self.compaction.bytes_before is None:
            with self._step() as current:
                current.started_at = current.started_at or timezone.now()
                current.bytes_before = footprint(self.stream).total
        # Reviews opened after this are re-checked chunk by chunk.
        self.reviews_floor = (
            Review.objects.filter(stream=self.stream).aggregate(top=Max("id"))["top"] or 0
        )
        self.plan = plan(
            self.stream,
            policy=pinned_policy(self.compaction),
            upto=self.compaction.upto,
            cutoff=self.compaction.cutoff,
        )
        for phase, work in ((SNAPSHOTS, self._snapshot_chunks), (RELEASE, self._release_chunks)):
            # A resumed run stores the snapshots its plan still wants even past that phase
            # (storing is idempotent); it moves neither phase nor cursor back for them.
            past = PHASES.index(self.compaction.phase) > PHASES.index(phase)
            if past and phase != SNAPSHOTS:
                continue
            for last, do in work():
                if self.compaction.phase == phase and last <= self.compaction.cursor:
                    continue
                with self._step() as current:
                    lock = Stream.objects.select_for_update().get(pk=self.stream.pk)
                    do(current)
                    if not past:
                        current.phase, current.cursor = phase, last
                    self.stream = lock
                if settings.CONTINUST_COMPACTION_CHUNK_DELAY_MS:
                    time.sleep(settings.CONTINUST_COMPACTION_CHUNK_DELAY_MS / 1000)
            if not past:
                with self._step() as current:
                    current.phase = PHASES[PHASES.index(phase) + 1]
                    current.cursor = 0
        with self._step() as current:
            self._finish(current)
        return self.compaction

    @contextmanager
    def _step(self) -> Iterator[Compaction]:
        """One transaction: the compaction row locked and fenced, its lease renewed."""
        with transaction.atomic():
            leases.hold(self.lease)
            current = Compaction.objects.get(pk=self.compaction.pk)
            yield current
            if current.status == CompactionStatus.RUNNING:
                current.lease_expires_at = leases.expiry(COMPACTIONS)
            current.save()
        self.compaction = current

    # Snapshots ---------------------------------------------------------------------

    def _snapshot_chunks(self) -> Iterator[tuple[int, Any]]:
        for part in _chunks(self.plan.snapshots, self.chunk):

            def do(current: Compaction, part: list[int] = part) -> None:
                current.snapshots_stored += store_snapshots(part)

            yield part[-1], do

    # Release -----------------------------------------------------------------------

    def _release_chunks(self) -> Iterator[tuple[int, Any]]:
        if self.plan.policy.ephemeral:
            batch: list[list[int]] = []
            size = 0
            for run in sorted(self.plan.runs, key=lambda r: r[0]):
                batch.append(run)
                size += len(run)
                if size >= self.chunk:
                    yield batch[-1][0], self._releaser(batch)
                    batch, size = [], 0
            if batch:
                yield batch[-1][0], self._releaser(batch)
        else:
            for part in _chunks(self.plan.drops, self.chunk):

                def do(current: Compaction, part: list[tuple[int, str]] = part) -> None:
                    current.states_released += self._drop_states([h for _, h in part])

                yield part[-1][0], do

    def _permit(self, current: Compaction) -> ReleasePermit:
        return ReleasePermit.objects.create(compaction=current, stream=self.stream)

    def _drop_states(self, hashes: list[str]) -> int:
        """Delete states no version outside this compaction's reach points at."""
        if not hashes:
            return 0
        permit = self._permit(self.compaction)
        with connection.cursor() as cursor:
            marks = ", ".join(["%s"] * len(hashes))
            cursor.execute(
                f"DELETE FROM continust_state WHERE hash IN ({marks}) "
                "AND NOT EXISTS (SELECT 1 FROM continust_version v "
                "WHERE v.state_id = continust_state.hash AND (v.stream_id <> %s OR v.id > %s)) "
                # a branch forked meanwhile: its head stays a snapshot
                "AND NOT EXISTS (SELECT 1 FROM continust_branch b JOIN continust_version h "
                "ON h.id = b.head_id WHERE h.state_id = continust_state.hash)",
                [*hashes, self.stream.pk, self.compaction.upto],
            )
            deleted: int = cursor.rowcount
        permit.delete()
        return deleted

    def _releaser(self, runs: list[list[int]]) -> Any:
        def do(current: Compaction) -> None:
            # Whatever became protected since planning (a review, a fork) stays.
            now_kept = protected_versions(
                self.stream,
                with_ranges=True,
                reviews_after=self.reviews_floor,
                upto=self.compaction.upto,
            )
            for run in runs:
                if any(v in now_kept for v in run):
                    continue
                self._release_run(current, run)

        return do

    def _release_run(self, current: Compaction, run: list[int]) -> None:
        """Release one run: payloads no kept version shares, states no kept version
        shares, then the row that stands for the run and one per version in it."""
        if ReleasedRun.objects.filter(stream=self.stream, first_id=run[0]).exists():
            return
        rows = {
            v: (event, digest, state)
            for v, event, digest, state in Version.objects.filter(pk__in=run).values_list(
                "id", "event_id", "event__hash", "state_id"
            )
        }
        events = [rows[v][0] for v in run]
        shared = set(
            Version.objects.filter(event_id__in=events)
            .exclude(pk__in=run)
            .filter(released__isnull=True)
            .values_list("event_id", flat=True)
        )
        payloads = [e for e in events if e not in shared]
        hashes = sorted({rows[v][2] for v in run})
        payload_bytes = sum(_sizes_of(Event, "payload", payloads).values())
        state_bytes = _sizes_of(State, "data", hashes)
        # A state goes when every version still pointing at it (not released before) is in
        # this run. Found through the state_id index, whatever the table statistics say.
        in_run = set(run)
        holders: dict[str, set[int]] = {h: set() for h in hashes}
        for part in _chunks(hashes, 2000):
            for digest, holder in Version.objects.filter(
                state_id__in=part, released__isnull=True
            ).values_list("state_id", "id"):
                holders[digest].add(holder)
        deletable = [h for h in hashes if holders[h] <= in_run]
        null = "'null'::jsonb" if on_postgresql() else "'null'"
        deleted: list[str] = []
        permit = self._permit(current)
        with connection.cursor() as cursor:
            for part in _chunks(payloads, 2000):
                marks = ", ".join(["%s"] * len(part))
                cursor.execute(
                    f"UPDATE continust_event SET payload = {null} WHERE position IN ({marks})", part
                )
            for part in _chunks(deletable, 2000):
                marks = ", ".join(["%s"] * len(part))
                cursor.execute(
                    f"DELETE FROM continust_state WHERE hash IN ({marks}) RETURNING hash", part
                )
                deleted += [row[0] for row in cursor.fetchall()]
        permit.delete()
        released_bytes = (
            payload_bytes
            - sum(_sizes_of(Event, "payload", payloads).values())
            + sum(state_bytes.get(h, 0) for h in deleted)
        )
        record = ReleasedRun.objects.create(
            stream=self.stream,
            compaction=current,
            first_id=run[0],
            last_id=run[-1],
            length=len(run),
            merkle_root=canonical.merkle_root([rows[v][1] for v in run]),
            bytes_released=released_bytes,
        )
        ReleasedVersion.objects.bulk_create(
            [ReleasedVersion(version_id=v, run=record) for v in run], batch_size=2000
        )
        current.runs += 1
        current.versions_released += len(run)
        current.payloads_released += len(payloads)
        current.states_released += len(deleted)

    # Finish ------------------------------------------------------------------------

    def _finish(self, current: Compaction) -> None:
        current.bytes_after = footprint(self.stream).total
        roots = list(
            ReleasedRun.objects.filter(compaction=current)
            .order_by("first_id")
            .values_list("merkle_root", flat=True)
        )
        event = record(
            self.stream.project,
            RECORD_EVENT,
            {
                "stream": self.stream.name,
                "compaction": current.pk,
                "policy": current.policy,
                "upto": current.upto,
                "runs": len(roots),
                "runs_root": canonical.merkle_root(roots),
                "versions_released": current.versions_released,
                "payloads_released": current.payloads_released,
                "states_released": current.states_released,
                "snapshots_stored": current.snapshots_stored,
                "bytes_before": current.bytes_before,
                "bytes_after": current.bytes_after,
            },
            actor=current.requested_by or "continust",
        )
        current.record = event
        current.status = CompactionStatus.DONE
        current.finished_at = timezone.now()
        current.lease_expires_at = None
        released = current.versions_released + current.payloads_released
        transaction.on_commit(lambda: statistics.refresh(released))


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- scheduling ------------------------------------------------------------------------


def request_due(*, now: datetime | None = None) -> list[Compaction]:
    """Request a compaction of each stream whose policy is not eternal and whose last
    compaction finished longer ago than ``CONTINUST_COMPACTION_INTERVAL_SECONDS``."""
    now = now or timezone.now()
    interval = timedelta(seconds=settings.CONTINUST_COMPACTION_INTERVAL_SECONDS)
    requested = []
    streams = Stream.objects.exclude(retention="eternal").exclude(name=AUDIT_STREAM).order_by("id")
    for stream in streams:
        last = Compaction.objects.filter(stream=stream).order_by("-id").first()
        if last is not None and (
            last.status in ACTIVE
            or (last.finished_at is not None and last.finished_at > now - interval)
        ):
            continue
        requested.append(request(stream, actor="schedule"))
    return requested

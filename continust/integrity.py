"""verify: recompute every hash chain, state and version digest, and name the first break."""

from __future__ import annotations

import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from continust import canonical
from continust.errors import ContinustError, StateReleased
from continust.folding import derive_state
from continust.graphs import graph_for
from continust.log.moves import broken_moves
from continust.models import (
    Compaction,
    Event,
    Project,
    ReleasedRun,
    ReleasedVersion,
    State,
    Stream,
    Version,
    VersionParent,
)
from continust.states import state_of


@dataclass(frozen=True)
class Broken:
    """The first broken link found: where, and what is wrong with it."""

    stream: str
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stream}: {self.where}: {self.reason}"


@dataclass
class Report:
    """The outcome of a verification: counts, each stream's chain head, the first break."""

    streams: int = 0
    events: int = 0
    versions: int = 0
    heads: dict[str, str] = field(default_factory=dict)
    broken: Broken | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "events": self.events,
            "versions": self.versions,
            "heads": self.heads,
            "broken": None if self.broken is None else {
                "stream": self.broken.stream, "where": self.broken.where,
                "reason": self.broken.reason,
            },
        }


class _StateCache:
    """Recent version states in memory; older ones come back from the database."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._size = size

    def put(self, version_id: int, state: Any) -> None:
        self._items[version_id] = state
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, version_id: int) -> Any:
        if version_id in self._items:
            return self._items[version_id]
        state = state_of(version_id)
        self.put(version_id, state)
        return state


def verify(project: Project | None = None, streams: Iterable[Stream] | None = None) -> Report:
    """Verify the given streams (or all of a project's, or every stream) and report."""
    if streams is None:
        query = Stream.objects.select_related("project").order_by("project__slug", "name")
        streams = query.filter(project=project) if project is not None else query
    report = Report()
    for stream in streams:
        report.streams += 1
        label = f"{stream.project.slug}/{stream.name}"
        broken = (_verify_chain(stream, label, report) or _verify_versions(stream, label, report)
                  or _verify_moves(stream, label))
        report.heads[label] = stream.last_hash
        if broken is not None:
            report.broken = broken
            break
    return report


def _verify_chain(stream: Stream, label: str, report: Report) -> Broken | None:
    previous = canonical.GENESIS
    expected_seq = 0
    rows = Event.objects.filter(stream=stream).order_by("seq").values_list(
        "seq", "id", "type", "timestamp", "payload", "causation_id", "correlation_id", "actor",
        "prev_hash", "hash",
    )
    released = _released_events(stream)
    for seq, id_, type_, moment, payload, causation, correlation, actor, prev, digest in (
        rows.iterator(chunk_size=2000)
    ):
        expected_seq += 1
        where = f"event #{seq} ({id_})"
        if seq != expected_seq:
            return Broken(label, where, f"sequence gap: expected #{expected_seq}")
        if prev != previous:
            return Broken(label, where, "previous hash does not match the event before it")
        if payload is None:
            # Compaction released the payload: the hash stays, linked on both sides, and
            # its released run's Merkle root (checked below) covers it.
            if id_ not in released:
                return Broken(label, where, "the payload is gone but no compaction released it")
            previous = digest
            report.events += 1
            continue
        body = canonical.event_body(
            id=str(id_), seq=seq, type=type_, timestamp=moment, payload=payload,
            causation=str(causation) if causation else None,
            correlation=str(correlation) if correlation else None, actor=actor,
        )
        computed = canonical.event_hash(previous, body)
        if computed != digest:
            return Broken(
                label, where, f"hash mismatch: stored {digest[:16]}…, computed {computed[:16]}…"
            )
        previous = digest
        report.events += 1
    if expected_seq != stream.event_count or previous != stream.last_hash:
        return Broken(label, "chain head", "the stream's recorded head does not match its events")
    return _verify_runs(stream, label)


def _verify_moves(stream: Stream, label: str) -> Broken | None:
    found = broken_moves(stream)
    return Broken(label, *found) if found is not None else None


def _released_events(stream: Stream) -> set[Any]:
    return set(ReleasedVersion.objects.filter(run__stream=stream)
               .values_list("version__event__id", flat=True))


def _verify_runs(stream: Stream, label: str) -> Broken | None:
    """Check each released run: one unbroken chain from its first version to its last,
    whose events' kept hashes give its Merkle root; and each compaction's runs give the
    root its audit record names."""
    members: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for run_id, generation, version_id, digest in (
        ReleasedVersion.objects.filter(run__stream=stream)
        .values_list("run_id", "version__generation", "version_id", "version__event__hash")
        .iterator(chunk_size=5000)
    ):
        members[run_id].append((generation, version_id, digest))
    first_parent = dict(VersionParent.objects.filter(
        child__stream=stream, child__released__isnull=False, index=0,
    ).values_list("child_id", "parent_id"))
    roots: dict[int, list[str]] = defaultdict(list)
    for run in ReleasedRun.objects.filter(stream=stream).order_by("first_id"):
        where = f"released run v{run.first_id}..v{run.last_id}"
        chain = sorted(members.get(run.pk, []))
        if len(chain) != run.length:
            return Broken(label, where, f"{len(chain)} versions, the run says {run.length}")
        ids = [version_id for _, version_id, _ in chain]
        if ids[0] != run.first_id or ids[-1] != run.last_id or any(
                first_parent.get(child) != parent for parent, child in itertools.pairwise(ids)):
            return Broken(label, where, "the run is not one chain from its first version "
                          "to its last")
        if canonical.merkle_root([digest for _, _, digest in chain]) != run.merkle_root:
            return Broken(label, where,
                          "the released events' hashes do not give the run's Merkle root")
        roots[run.compaction_id].append(run.merkle_root)
    for job, payload in Compaction.objects.filter(stream=stream, record__isnull=False) \
            .values_list("id", "record__payload"):
        if canonical.merkle_root(roots.get(job, [])) != payload.get("runs_root"):
            return Broken(label, f"compaction {job}",
                          "its released runs do not give the root its audit record names")
    return None


def _verify_versions(stream: Stream, label: str, report: Report) -> Broken | None:
    graph = graph_for(stream)
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in (
        VersionParent.objects.filter(child__stream=stream).order_by("child_id", "index")
        .values_list("child_id", "parent_id").iterator(chunk_size=5000)
    ):
        parents[child].append(parent)
    states = _StateCache()
    known: dict[int, tuple[str, int]] = {}  # id -> (digest, generation)
    checked_states: set[str] = set()
    rows = Version.objects.filter(stream=stream).order_by("id").values_list(
        "id", "event__id", "event__type", "event__payload", "event__actor", "event__hash",
        "state_id", "generation", "digest", "reducer", "reducer_version",
    )
    released = set(ReleasedVersion.objects.filter(run__stream=stream)
                   .values_list("version_id", flat=True))
    for (vid, event_id, type_, payload, actor, event_hash, state_id, generation, digest,
         reducer, reducer_version) in rows.iterator(chunk_size=2000):
        where = f"version {vid} (event {event_id})"
        mine = parents.get(vid, [])
        if any(p not in known for p in mine):
            return Broken(label, where, "a parent is missing or not older than the version")
        expected_generation = 1 + max((known[p][1] for p in mine), default=-1)
        if generation != expected_generation:
            return Broken(label, where, f"generation {generation}, expected {expected_generation}")
        stored = None
        if state_id not in checked_states:
            # A state that is not stored (a selective stream's, a released one) is
            # recomputed below, or was released with its run.
            stored = State.objects.filter(pk=state_id).values_list("data", flat=True).first()
            if stored is not None:
                if canonical.state_hash(stored) != state_id:
                    return Broken(label, where,
                                  f"state {state_id[:16]}… does not match its content")
                checked_states.add(state_id)
        if vid in released or payload is None:
            if vid not in released:
                return Broken(label, where, "the payload is gone but no compaction released it")
            state = None
        else:
            try:
                state = derive_state(
                    graph, states.get, reducer=reducer, reducer_version=reducer_version,
                    parents=mine, event_id=str(event_id), type=type_, payload=payload,
                    actor=actor,
                )
            except StateReleased:
                # The first version kept after a released run: its parent's state is gone,
                # so its own stored state (content-checked above) is what there is.
                if state_id not in checked_states:
                    return Broken(label, where, "the state follows a released run, and is "
                                  "not stored")
                state = None
            except ContinustError as err:
                return Broken(label, where, f"the state cannot be recomputed: {err}")
        if state is not None and canonical.state_hash(state) != state_id:
            return Broken(label, where, "the stored state is not the fold of its event")
        computed = canonical.version_digest(
            event_hash=event_hash, parents=[known[p][0] for p in mine], state=state_id,
            reducer=reducer, reducer_version=reducer_version,
        )
        if computed != digest:
            return Broken(label, where, "version digest mismatch")
        known[vid] = (digest, generation)
        if state is not None:
            states.put(vid, state)
        elif stored is not None:
            states.put(vid, stored)
        report.versions += 1
    return None

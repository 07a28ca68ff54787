"""verify: recompute every hash chain, state and version digest, check every branch head
against its recorded moves, and name every break in every stream."""

from __future__ import annotations

import itertools
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from continust.core.database import on_postgresql, outside_transactions, snapshot
from continust.core.errors import ContinustError, StateReleased
from continust.graph.lineage import VersionGraph
from continust.graph.parents import first_parents_of, parents_in_stream
from continust.log import canonical
from continust.log.folding import derive_state
from continust.log.moves import broken_moves
from continust.log.states import state_of
from continust.models import (
    Compaction,
    Event,
    Project,
    ReleasedRun,
    ReleasedVersion,
    Replay,
    State,
    Stream,
    Version,
)
from continust.schemas.registry import Registry, registry_of
from continust.schemas.upcasting import upcast_payload


@dataclass(frozen=True)
class Broken:
    """One broken link: the project, stream and version (when one) it is in, and why."""

    project: str
    stream: str
    where: str
    reason: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.project}/{self.stream}: {self.where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stream": self.stream,
            "version": self.version,
            "where": self.where,
            "reason": self.reason,
        }


@dataclass
class Report:
    """The outcome of a verification: counts, each stream's chain head, every break."""

    streams: int = 0
    events: int = 0
    versions: int = 0
    heads: dict[str, str] = field(default_factory=dict)
    breaks: list[Broken] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def broken(self) -> Broken | None:
        """The first break, as earlier reports gave it."""
        return self.breaks[0] if self.breaks else None

    @property
    def broken_streams(self) -> list[str]:
        """Every stream with a break, ``project/stream``, in the order verified."""
        return list(dict.fromkeys(f"{b.project}/{b.stream}" for b in self.breaks))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "streams": self.streams,
            "events": self.events,
            "versions": self.versions,
            "heads": self.heads,
            "broken": None if self.broken is None else self.broken.as_dict(),
            "broken_streams": self.broken_streams,
            "breaks": [b.as_dict() for b in self.breaks],
        }


class _Findings:
    """The breaks found in one stream, each named by its project and stream."""

    def __init__(self, stream: Stream) -> None:
        self.project = stream.project.slug
        self.stream = stream.name
        self.found: list[Broken] = []

    def add(self, where: str, reason: str, version: int | None = None) -> None:
        self.found.append(Broken(self.project, self.stream, where, reason, version))


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
    """Verify the given streams (or all of a project's, or every stream) and report every
    broken link of every stream: a break in one stream never hides one in another."""
    if streams is None:
        query = Stream.objects.select_related("project").order_by("project__slug", "name")
        streams = query.filter(project=project) if project is not None else query
    report = Report()
    for stream in streams:
        report.streams += 1
        report.breaks.extend(verify_stream(stream, report))
        report.heads[f"{stream.project.slug}/{stream.name}"] = stream.last_hash
    return report


def verify_stream(stream: Stream, report: Report | None = None) -> list[Broken]:
    """Return every broken link of one stream; count what was checked into ``report``."""
    report = report if report is not None else Report()
    if not on_postgresql() or not outside_transactions():
        return _verify_stream(stream, report)
    # Every check reads the stream as of one snapshot: a write committed between two of
    # its queries (an append between reading the moves and the heads) is no break.
    with snapshot():
        stream.refresh_from_db(fields=["event_count", "last_hash"])
        return _verify_stream(stream, report)


def _verify_stream(stream: Stream, report: Report) -> list[Broken]:
    found = _Findings(stream)
    try:
        _verify_chain(stream, found, report)
        _verify_runs(stream, found)
        _verify_versions(stream, found, report)
        _verify_branches(stream, found)
    except (ContinustError, LookupError, TypeError, ValueError) as err:
        # A corruption no check above foresees (a reducer that cannot fold what is
        # there, say): the stream is broken, and the report still names it.
        found.add("stream", f"cannot be verified: {err}")
    return found.found


def _verify_chain(stream: Stream, found: _Findings, report: Report) -> None:
    """Check every link of the hash chain; a broken link does not hide later ones, as
    each event is checked against the hashes stored beside it."""
    previous = canonical.GENESIS
    expected_seq = 0
    rows = (
        Event.objects.filter(stream=stream)
        .order_by("seq")
        .values_list(
            "seq",
            "id",
            "type",
            "timestamp",
            "payload",
            "causation_id",
            "correlation_id",
            "actor",
            "prev_hash",
            "hash",
            "position",
            "project_id",
        )
    )
    released = _released_events(stream)
    for (
        seq,
        id_,
        type_,
        moment,
        payload,
        causation,
        correlation,
        actor,
        prev,
        digest,
        position,
        project,
    ) in rows.iterator(chunk_size=2000):
        expected_seq += 1
        reasons = []
        if project != stream.project_id:
            # No constraint ties an event's project to its stream's, and no hash covers it:
            # an event moved across would answer another project's look-ups by id.
            reasons.append(f"recorded in project {project}, its stream's is {stream.project_id}")
        if seq != expected_seq:
            reasons.append(f"sequence gap: expected #{expected_seq}")
            expected_seq = seq
        if prev != previous:
            reasons.append("previous hash does not match the event before it")
        previous = digest
        report.events += 1
        if payload is None:
            # Compaction released the payload: the hash stays, linked on both sides, and
            # its released run's Merkle root (checked below) covers it.
            if id_ not in released:
                reasons.append("the payload is gone but no compaction released it")
        else:
            body = canonical.event_body(
                id=str(id_),
                seq=seq,
                type=type_,
                timestamp=moment,
                payload=payload,
                causation=str(causation) if causation else None,
                correlation=str(correlation) if correlation else None,
                actor=actor,
            )
            computed = canonical.event_hash(prev, body)
            if computed != digest:
                reasons.append(f"hash mismatch: stored {digest[:16]}…, computed {computed[:16]}…")
        if reasons:
            version = _version_of(position)
            for reason in reasons:
                found.add(f"event #{seq} ({id_})", reason, version)
    if expected_seq != stream.event_count or previous != stream.last_hash:
        found.add(
            "chain head",
            f"the stream records {stream.event_count} events ending in "
            f"{stream.last_hash[:16]}…, its events end at #{expected_seq} "
            f"{previous[:16]}…",
        )


def _version_of(position: int) -> int | None:
    """The version an event made (the first, when replays made more), to name a break."""
    return (
        Version.objects.filter(event_id=position)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )


def _released_events(stream: Stream) -> set[Any]:
    return set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list(
            "version__event__id", flat=True
        )
    )


def _verify_runs(stream: Stream, found: _Findings) -> None:
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
    first_parent = first_parents_of(
        version_id for chain in members.values() for _, version_id, _ in chain
    )
    roots: dict[int, list[str]] = defaultdict(list)
    for run in ReleasedRun.objects.filter(stream=stream).order_by("first_id"):
        where = f"released run v{run.first_id}..v{run.last_id}"
        chain = sorted(members.get(run.pk, []))
        roots[run.compaction_id].append(run.merkle_root)
        if len(chain) != run.length:
            found.add(where, f"{len(chain)} versions, the run says {run.length}", run.first_id)
            continue
        ids = [version_id for _, version_id, _ in chain]
        if (
            ids[0] != run.first_id
            or ids[-1] != run.last_id
            or any(first_parent.get(child) != parent for parent, child in itertools.pairwise(ids))
        ):
            found.add(
                where, "the run is not one chain from its first version to its last", run.first_id
            )
        elif canonical.merkle_root([digest for _, _, digest in chain]) != run.merkle_root:
            found.add(
                where, "the released events' hashes do not give the run's Merkle root", run.first_id
            )
    for job, payload in Compaction.objects.filter(stream=stream, record__isnull=False).values_list(
        "id", "record__payload"
    ):
        if canonical.merkle_root(roots.get(job, [])) != payload.get("runs_root"):
            found.add(
                f"compaction {job}", "its released runs do not give the root its audit record names"
            )


def _verify_versions(stream: Stream, found: _Findings, report: Report) -> None:
    """Check each version's parents, generation, state and digest against what is stored.

    The graph is built here from the rows as they are checked, not taken from the
    cache, so a corrupted parent link is a finding, not an error; after a break the
    stored digests and states carry on, so each broken version is named once.
    """
    graph: VersionGraph[int] = VersionGraph()
    parents = parents_in_stream(stream.pk)
    states = _StateCache()
    known: dict[int, tuple[str, int]] = {}  # id -> (digest, generation)
    checked_states: set[str] = set()
    stored_states: dict[str, Any] = {}
    rows = (
        Version.objects.filter(stream=stream)
        .order_by("id")
        .values_list(
            "id",
            "event__id",
            "event__type",
            "event__payload",
            "event__actor",
            "event__hash",
            "state_id",
            "generation",
            "digest",
            "reducer",
            "reducer_version",
            "branch",
            "event__position",
        )
    )
    upcasting = _upcasting_replays(stream)
    released = set(
        ReleasedVersion.objects.filter(run__stream=stream).values_list("version_id", flat=True)
    )
    for (
        vid,
        event_id,
        type_,
        payload,
        actor,
        event_hash,
        state_id,
        generation,
        digest,
        reducer,
        reducer_version,
        branch,
        position,
    ) in _with_states(rows.iterator(chunk_size=STATE_CHUNK), checked_states, stored_states):
        where = f"version {vid} (event {event_id})"
        if branch in upcasting and payload is not None:
            # A replay with upcasting folded the payload as its type's version then read it.
            registry, targets = upcasting[branch]
            payload = upcast_payload(
                registry, type_, payload, position, to=targets.get(type_, 0)
            ).payload
        report.versions += 1
        mine = parents.get(vid, [])
        present = [p for p in mine if p in known]
        graph.add(vid, present)
        known[vid] = (digest, generation)
        if len(present) != len(mine):
            found.add(
                where,
                "a parent is missing, in another stream or not older than the "
                f"version (parents {mine})",
                vid,
            )
            continue
        expected_generation = 1 + max((known[p][1] for p in mine), default=-1)
        if generation != expected_generation:
            found.add(where, f"generation {generation}, expected {expected_generation}", vid)
        stored = None
        if state_id not in checked_states:
            # A state that is not stored (a selective stream's, a released one) is
            # recomputed below, or was released with its run.
            stored = stored_states.pop(state_id, None)
            if stored is not None:
                if canonical.state_hash(stored) != state_id:
                    found.add(where, f"state {state_id[:16]}… does not match its content", vid)
                    stored = None
                else:
                    checked_states.add(state_id)
        state = _fold(
            graph,
            states,
            found,
            where,
            vid,
            released,
            checked_states,
            reducer=reducer,
            reducer_version=reducer_version,
            parents=mine,
            event_id=str(event_id),
            type=type_,
            payload=payload,
            actor=actor,
            state_id=state_id,
        )
        computed = canonical.version_digest(
            event_hash=event_hash,
            parents=[known[p][0] for p in mine],
            state=state_id,
            reducer=reducer,
            reducer_version=reducer_version,
        )
        if computed != digest:
            found.add(where, "version digest mismatch", vid)
        if state is not None:
            states.put(vid, state)
        elif stored is not None:
            states.put(vid, stored)


# Versions are read in chunks of this many, and the stored states of a chunk in one query.
STATE_CHUNK = 500

Row = tuple[Any, ...]


def _with_states(rows: Iterable[Row], checked: set[str], stored: dict[str, Any]) -> Iterator[Row]:
    """Yield ``rows`` (state id seventh), having put in ``stored`` the data of each chunk's
    states not ``checked`` yet: one query per chunk, not one per version. ``stored`` holds
    one chunk's states at most (the consumer pops them; what it does not is dropped)."""
    rest = iter(rows)
    while chunk := list(itertools.islice(rest, STATE_CHUNK)):
        stored.clear()
        wanted = {row[6] for row in chunk} - checked
        if wanted:
            stored.update(State.objects.filter(pk__in=wanted).values_list("pk", "data"))
        yield from chunk


def _upcasting_replays(stream: Stream) -> dict[str, tuple[Registry | None, dict[str, int]]]:
    """The shadow branches of the stream's replays that folded with upcasting, each with
    the registry and the versions they read."""
    replays = list(
        Replay.objects.filter(stream=stream, upcast_to__isnull=False).values_list("id", "upcast_to")
    )
    if not replays:
        return {}
    registry = registry_of(Project.objects.get(pk=stream.project_id))
    return {f"replay/{pk}": (registry, dict(targets or {})) for pk, targets in replays}


def _fold(
    graph: VersionGraph[int],
    states: _StateCache,
    found: _Findings,
    where: str,
    vid: int,
    released: set[int],
    checked_states: set[str],
    *,
    state_id: str,
    payload: Any,
    **event: Any,
) -> Any:
    """Return the version's state as its fold gives it, when it matches what it records;
    else name the break and return None (the stored state, if any, carries on)."""
    if vid in released or payload is None:
        if vid not in released:
            found.add(where, "the payload is gone but no compaction released it", vid)
        return None
    try:
        state = derive_state(graph, states.get, payload=payload, **event)
    except StateReleased:
        # The first version kept after a released run: its parent's state is gone,
        # so its own stored state (content-checked above) is what there is.
        if state_id not in checked_states:
            found.add(where, "the state follows a released run, and is not stored", vid)
        return None
    except ContinustError as err:
        found.add(where, f"the state cannot be recomputed: {err}", vid)
        return None
    if canonical.state_hash(state) != state_id:
        found.add(where, "the stored state is not the fold of its event", vid)
        return None
    return state


def _verify_branches(stream: Stream, found: _Findings) -> None:
    """Check every branch: its moves link up and form an unbroken hash chain, and its head
    is where the last one put it (``continust.log.moves``)."""
    for where, reason, version in broken_moves(stream):
        found.add(where, reason, version)

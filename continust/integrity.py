"""verify: recompute every hash chain, state and version digest, and name the first break."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from continust import canonical
from continust.errors import ContinustError
from continust.folding import derive_state
from continust.graphs import graph_for
from continust.models import Event, Project, State, Stream, Version, VersionParent


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
        state = Version.objects.select_related("state").get(pk=version_id).state.data
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
        broken = _verify_chain(stream, label, report) or _verify_versions(stream, label, report)
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
    for seq, id_, type_, moment, payload, causation, correlation, actor, prev, digest in (
        rows.iterator(chunk_size=2000)
    ):
        expected_seq += 1
        where = f"event #{seq} ({id_})"
        if seq != expected_seq:
            return Broken(label, where, f"sequence gap: expected #{expected_seq}")
        if prev != previous:
            return Broken(label, where, "previous hash does not match the event before it")
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
    for (vid, event_id, type_, payload, actor, event_hash, state_id, generation, digest,
         reducer, reducer_version) in rows.iterator(chunk_size=2000):
        where = f"version {vid} (event {event_id})"
        mine = parents.get(vid, [])
        if any(p not in known for p in mine):
            return Broken(label, where, "a parent is missing or not older than the version")
        expected_generation = 1 + max((known[p][1] for p in mine), default=-1)
        if generation != expected_generation:
            return Broken(label, where, f"generation {generation}, expected {expected_generation}")
        if state_id not in checked_states:
            data = State.objects.get(pk=state_id).data
            if canonical.state_hash(data) != state_id:
                return Broken(label, where, f"state {state_id[:16]}… does not match its content")
            checked_states.add(state_id)
        try:
            state = derive_state(
                graph, states.get, reducer=reducer, reducer_version=reducer_version,
                parents=mine, event_id=str(event_id), type=type_, payload=payload, actor=actor,
            )
        except ContinustError as err:
            return Broken(label, where, f"the state cannot be recomputed: {err}")
        computed_state = canonical.state_hash(state)
        if computed_state != state_id:
            return Broken(label, where, "the stored state is not the fold of its event")
        computed = canonical.version_digest(
            event_hash=event_hash, parents=[known[p][0] for p in mine], state=state_id,
            reducer=reducer, reducer_version=reducer_version,
        )
        if computed != digest:
            return Broken(label, where, "version digest mismatch")
        known[vid] = (digest, generation)
        states.put(vid, state)
        report.versions += 1
    return None

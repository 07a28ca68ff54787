"""What the explorer and the API show about one version, read in a bounded number of
queries whatever the history's length.

``read_version`` gathers a version's event, its state (or the released run that took
it), its parents and children, the branches whose head it is, its cause chain and how
many events it caused, and its hashes. The explorer's version panel and the API's
version endpoints both render this one read, so they show the same facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from continust.core.errors import NotFound
from continust.graph.causation import causes, consequence_count
from continust.graph.parents import children_of, parents_of
from continust.log.states import released_error, state_of
from continust.log.subjects import Revealer, readable_event, readable_state
from continust.models import (
    Branch,
    Event,
    ReleasedRun,
    ReleasedVersion,
    Stream,
    Version,
)

CONSEQUENCE_LIMIT = 200
"""Consequences are counted up to this many; the causation view lists them all."""


@dataclass(frozen=True)
class VersionRead:
    """One version as the explorer and the API show it: personal values revealed (or
    shown erased), never the stored form."""

    version: Version
    event: Event
    parents: tuple[int, ...]
    children: tuple[int, ...]
    heads: tuple[str, ...]
    """The branches whose head this version is, by name."""
    released: ReleasedRun | None
    """The run compaction released this version's state in; None while it is kept."""
    parent_released: bool
    """Whether the first parent's state was released (nothing to diff against)."""
    state: Any
    """The state document; None when released, or when read ``brief``."""
    causes: tuple[tuple[Event, Version | None], ...]
    """The cause chain, nearest first, each with the first version it made (if any);
    empty when read ``brief`` (``cause_count`` still counts it)."""
    cause_count: int
    consequence_count: int
    """Events caused, directly or not, up to ``CONSEQUENCE_LIMIT``."""

    @property
    def seq(self) -> int:
        """The event's position in its stream's hash chain."""
        return self.event.seq

    @property
    def event_hash(self) -> str:
        return self.event.hash

    @property
    def state_hash(self) -> str:
        return self.version.state_id

    @property
    def digest(self) -> str:
        return self.version.digest

    def require_state(self) -> Any:
        """Return the state, or raise ``StateReleased`` if compaction released it."""
        if self.released is not None:
            raise released_error(self.version.pk)
        return self.state if self.state is not None else readable_state(self.version)


def read_version(stream: Stream, version: Version | int, *, brief: bool = False) -> VersionRead:
    """Read a version of ``stream`` (``brief``: without its state and its causes' events).

    Raises ``NotFound`` when the stream has no such version. The number of queries is
    fixed (at most eleven), whatever the length of the history.
    """
    loaded = _load(stream, version)
    revealer = Revealer(stream.project_id)
    event = readable_event(loaded.event, revealer)
    parents = tuple(parents_of(loaded))
    children = tuple(children_of(loaded))
    heads = tuple(
        Branch.objects.filter(stream=stream, head_id=loaded.pk)
        .order_by("name")
        .values_list("name", flat=True)
    )
    released_rows = {
        row.version_id: row
        for row in ReleasedVersion.objects.select_related("run__compaction").filter(
            version_id__in=[loaded.pk, *parents[:1]]
        )
    }
    mine = released_rows.get(loaded.pk)
    released = mine.run if mine is not None else None
    state = None if brief or released is not None else revealer.reveal(state_of(loaded))
    chain = causes(event) if event.causation_id is not None else []
    chain = [readable_event(cause, revealer) for cause in chain]
    return VersionRead(
        version=loaded,
        event=event,
        parents=parents,
        children=children,
        heads=heads,
        released=released,
        parent_released=bool(parents) and parents[0] in released_rows,
        state=state,
        causes=() if brief else with_first_versions(chain),
        cause_count=len(chain),
        consequence_count=consequence_count(event, limit=CONSEQUENCE_LIMIT),
    )


def _load(stream: Stream, version: Version | int) -> Version:
    if isinstance(version, Version):
        if version.stream_id == stream.pk and Version.event.is_cached(version):
            version.stream = stream
            return version
        wanted = version.pk
    else:
        wanted = version
    found = Version.objects.select_related("event").filter(stream=stream, pk=wanted).first()
    if found is None:
        raise NotFound(f"stream {stream.name} has no version {wanted}")
    found.stream = stream
    return found


def with_first_versions(events: Sequence[Event]) -> tuple[tuple[Event, Version | None], ...]:
    """Pair events with the first version each made, to link to it."""
    if not events:
        return ()
    firsts: dict[int, Version] = {}
    for made in Version.objects.filter(event__in=events).order_by("-id"):
        firsts[made.event_id] = made
    return tuple((event, firsts.get(event.pk)) for event in events)

"""Writing to the log: append events, fork branches, merge them.

Every write takes the stream's row lock (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's writer lock), so writers to one stream queue up while
unrelated streams proceed. Each write plans everything in memory (hash chain,
states, versions) and inserts it in one transaction: a refused batch writes
nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min

from continust.core.database import on_postgresql
from continust.core.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    IdempotencyConflict,
    InvalidEvent,
    MergeConflict,
    NotFound,
    NothingToMerge,
    PayloadTooLarge,
    StateReleased,
    UnknownCausation,
)
from continust.core.parsing import parse_new_branch_name
from continust.documents.diff import Conflict
from continust.graph.cache import graph_for
from continust.log import canonical, linear, moves, timing
from continust.log.folding import (
    MERGE_EVENT,
    MERGE_REDUCER,
    apply_resolutions,
    fold_event,
    merge_states,
    storable_state,
)
from continust.log.policy import policy_of
from continust.log.reducers import get_reducer
from continust.log.rows import (
    insert_rows,
    insert_state_texts,
    reserve_ids,
    reserve_many,
    write_all,
)
from continust.log.states import is_released, state_of, store_snapshots
from continust.log.subjects import reveal, seal_payload
from continust.log.tips import Tip, tips
from continust.models import Branch, Event, Stream, Tag, Version, VersionParent
from continust.schemas.registry import is_internal
from continust.schemas.validation import check_payloads


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
MAIN = "main"


@dataclass(frozen=True)
class NewEvent:
    """An event to append; ``id`` is the idempotency key and defaults to a new UUID."""

    type: str
    payload: dict[str, Any]
    id: uuid.UUID | None = None
    timestamp: datetime | None = None
    causation: uuid.UUID | None = None
    correlation: uuid.UUID | None = None
    actor: str = ""


@dataclass(frozen=True)
class Appended:
    """The versions an append made, and whether it wrote them now or earlier (a retry).

    ``parents`` maps each new version's id to its parents' ids, where the write knows
    them without a query (a linear append); readers look up the others.
    """

    versions: list[Version]
    created: bool
    parents: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class _PlannedVersion:
    id: int
    event: Event
    parents: list[Version | _PlannedVersion]
    state_hash: str
    state: Any
    generation: int
    digest: str
    reducer: str
    reducer_version: int
    branch: str
    key: str | None = None
    model: Version | None = field(default=None, repr=False)


def lock_stream(stream: Stream) -> Stream:
    """Take the stream's write lock and return its fresh row; call inside a transaction."""
    return Stream.objects.select_for_update().get(pk=stream.pk)


def validate_event(event: NewEvent) -> NewEvent:
    """Refuse an event whose fields or payload break the log's rules; return it as stored."""
    if not isinstance(event.type, str) or not event.type.strip() or len(event.type) > 200:
        raise InvalidEvent("an event type must be a non-empty string of at most 200 characters")
    if not isinstance(event.payload, dict):
        raise InvalidEvent(f"a payload must be a JSON object, not {type(event.payload).__name__}")
    if not isinstance(event.actor, str) or len(event.actor) > 200:
        raise InvalidEvent("an actor must be a string of at most 200 characters")
    try:
        canonical.storable(event.type)
        canonical.storable(event.actor)
    except ValueError as err:
        raise InvalidEvent(f"the event type or actor is refused: {err}") from err
    try:
        payload, text = canonical.storable_with_text(event.payload)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as err:
        raise InvalidEvent(f"the payload is not valid JSON: {err}") from err
    limit = settings.CONTINUST_MAX_PAYLOAD_BYTES
    if size > limit:
        raise PayloadTooLarge(f"the payload has {size} bytes; the limit is {limit}")
    return event if payload is event.payload else replace(event, payload=payload)


class Batch:
    """Plan a write to one locked stream, then insert it all at once."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.events: list[Event] = []
        self.planned: list[_PlannedVersion] = []
        self._seq = stream.event_count
        self._last_hash = stream.last_hash
        self._event_ids: list[int] = []
        self._version_ids: list[int] = []
        self._states: dict[str, tuple[Any, str]] = {}

    def add_event(self, new: NewEvent) -> Event:
        """Chain an event after the last one planned."""
        if not self._event_ids:
            self._event_ids = reserve_ids(Event, 1)
        moment = new.timestamp or datetime.now(UTC)
        self._seq += 1
        event_id = new.id or uuid.uuid4()
        body = canonical.event_body(
            id=str(event_id),
            seq=self._seq,
            type=new.type,
            timestamp=moment,
            payload=new.payload,
            causation=str(new.causation) if new.causation else None,
            correlation=str(new.correlation) if new.correlation else None,
            actor=new.actor,
        )
        digest = canonical.event_hash(self._last_hash, body)
        event = Event(
            position=self._event_ids.pop(),
            id=event_id,
            project_id=self.stream.project_id,
            stream=self.stream,
            seq=self._seq,
            type=new.type,
            timestamp=moment,
            payload=new.payload,
            causation_id=new.causation,
            correlation_id=new.correlation,
            actor=new.actor,
            prev_hash=self._last_hash,
            hash=digest,
        )
        self._last_hash = digest
        self.events.append(event)
        return event

    def reserve(self, events: int, versions: int) -> None:
        """Reserve row ids for the events and versions about to be planned."""
        event_ids, version_ids = reserve_many([(Event, events), (Version, versions)])
        self._event_ids = list(reversed(event_ids))
        self._version_ids = list(reversed(version_ids))

    def add_version(
        self,
        event: Event,
        parents: Sequence[Version | _PlannedVersion],
        state: Any,
        *,
        reducer: str,
        reducer_version: int,
        branch: str,
        key: str | None = None,
        state_hash: str | None = None,
        store_state: bool = True,
    ) -> _PlannedVersion:
        """Plan the version an event makes on top of its parents.

        ``store_state=False`` records only the state's hash: a selective stream stores
        snapshots, and ``continust.log.states`` recomputes the rest when they are read.
        """
        if not self._version_ids:
            self._version_ids = reserve_ids(Version, 1)
        if state_hash is None or (store_state and state_hash not in self._states):
            computed, text = canonical.hashed_state(state)
            state_hash = state_hash or computed
            if store_state:
                # The canonical text is kept for the insert: states are the largest rows.
                self._states[state_hash] = (state, text)
        generation = 1 + max((p.generation for p in parents), default=-1)
        digest = canonical.version_digest(
            event_hash=event.hash,
            parents=[p.digest for p in parents],
            state=state_hash,
            reducer=reducer,
            reducer_version=reducer_version,
        )
        planned = _PlannedVersion(
            id=self._version_ids.pop(),
            event=event,
            parents=list(parents),
            state_hash=state_hash,
            state=state,
            generation=generation,
            digest=digest,
            reducer=reducer,
            reducer_version=reducer_version,
            branch=branch,
            key=key,
        )
        self.planned.append(planned)
        return planned

    def commit(
        self, move: _Move | None = None, *, created_at: datetime | None = None
    ) -> list[Version]:
        """Insert the planned rows and advance the stream's chain; return the versions.

        ``move`` moves an existing branch to the last version in the same write;
        ``created_at`` is the versions' time (an import's), else now.
        """
        now = created_at or datetime.now(UTC)
        versions = []
        for plan in self.planned:
            plan.model = Version(
                id=plan.id,
                stream=self.stream,
                event=plan.event,
                state_id=plan.state_hash,
                first_parent_id=plan.parents[0].id if plan.parents else None,
                generation=plan.generation,
                digest=plan.digest,
                key=plan.key,
                branch=plan.branch,
                reducer=plan.reducer,
                reducer_version=plan.reducer_version,
                created_at=now,
            )
            versions.append(plan.model)
        # The first parent is the version's own column: links only for a merge's others.
        links = [
            VersionParent(child_id=plan.id, parent_id=parent.id, index=index)
            for plan in self.planned
            for index, parent in enumerate(plan.parents)
            if index
        ]
        if on_postgresql():
            self._write_postgres(versions, links, move, now)
        else:
            self._write_rows(versions, links)
            if move is not None:
                moves.write_move(
                    self.stream,
                    move.branch.name,
                    move.branch,
                    versions[-1],
                    reason=move.reason,
                    actor=move.actor,
                )
        if self.events:
            self.stream.event_count = self._seq
            self.stream.last_hash = self._last_hash
        return versions

    def _write_postgres(
        self, versions: list[Version], links: list[VersionParent], move: _Move | None, now: datetime
    ) -> None:
        tail: list[tuple[str, list[Any]]] = []
        if self.events:
            tail.append(
                (
                    "UPDATE continust_stream SET event_count = %s, last_hash = %s WHERE id = %s",
                    [self._seq, self._last_hash, self.stream.pk],
                )
            )
        if move is not None:
            tail.extend(
                moves.move_statements(
                    move.branch, versions[-1], reason=move.reason, actor=move.actor, at=now
                )
            )
        write_all(
            self._states, [(Event, self.events), (Version, versions), (VersionParent, links)], tail
        )

    def _write_rows(self, versions: list[Version], links: list[VersionParent]) -> None:
        insert_state_texts(self._states)
        insert_rows(Event, self.events)
        insert_rows(Version, versions)
        insert_rows(VersionParent, links)
        if self.events:
            Stream.objects.filter(pk=self.stream.pk).update(
                event_count=self._seq, last_hash=self._last_hash
            )


@dataclass(frozen=True)
class _Move:
    """A move of an existing branch, written with the versions it moves to."""

    branch: Branch
    reason: str
    actor: str


def move_branch(
    stream: Stream,
    name: str,
    new_head: Version,
    *,
    reason: str,
    actor: str = "",
    branch: Branch | None | _Unset = UNSET,
    created_at: datetime | None = None,
) -> Branch:
    """Point a branch at a version, creating the branch if needed (made at
    ``created_at`` if given, else now), and record the move.

    A caller that already read the branch (under the stream lock) passes it along.
    """
    if isinstance(branch, _Unset):
        branch = Branch.objects.filter(stream=stream, name=name).first()
    return moves.write_move(
        stream, name, branch, new_head, reason=reason, actor=actor, created_at=created_at
    )


def _check_head(branch: Branch | None, expected_head: int | None | _Unset) -> None:
    if isinstance(expected_head, _Unset):
        return
    current = branch.head_id if branch else None
    if current != expected_head:
        name = branch.name if branch else "the branch"
        raise ConcurrencyConflict(
            f"{name} is at version {current}, not at the expected {expected_head}",
            current_head=current,
        )


def _sealed(stream: Stream, event: NewEvent) -> NewEvent:
    """Return the event as stored: its personal values sealed (``continust.log.subjects``)."""
    payload = seal_payload(stream, event.type, event.payload)
    return event if payload is event.payload else replace(event, payload=payload)


def _existing(
    stream: Stream,
    events: Sequence[NewEvent],
    plain: dict[uuid.UUID | None, dict[str, Any]],
) -> Appended | None:
    """Return the versions of an already recorded batch, or None for a new one."""
    ids = [e.id for e in events if e.id is not None]
    if not ids:
        return None
    found: dict[uuid.UUID | None, Event] = {
        e.id: e for e in Event.objects.filter(project_id=stream.project_id, id__in=ids)
    }
    if not found:
        return None
    if len(found) != len(events) or len(ids) != len(events):
        raise IdempotencyConflict(
            f"{len(found)} of the {len(events)} events are already recorded; "
            "a retried batch must carry exactly the same events"
        )
    for new in events:
        old = found[new.id]
        if old.stream_id != stream.pk or old.type != new.type or not _same_payload(old, new, plain):
            raise IdempotencyConflict(f"event id {new.id} is already recorded with other content")
    firsts = (
        Version.objects.filter(event__in=found.values())
        .values("event_id")
        .annotate(first=Min("id"))
        .values_list("first", flat=True)
    )
    versions = list(Version.objects.filter(id__in=list(firsts)).order_by("event__seq"))
    return Appended(versions=versions, created=False)


def _same_payload(old: Event, new: NewEvent, plain: dict[uuid.UUID | None, dict[str, Any]]) -> bool:
    if old.payload == new.payload:
        return True
    return bool(reveal(old.project_id, old.payload) == plain.get(new.id, new.payload))


def _check_causation(stream: Stream, events: Sequence[NewEvent]) -> None:
    in_batch: set[uuid.UUID] = set()
    wanted = {e.causation for e in events if e.causation is not None}
    known = set(
        Event.objects.filter(project_id=stream.project_id, id__in=wanted).values_list(
            "id", flat=True
        )
    )
    for new in events:
        if new.causation is not None and new.causation not in known | in_batch:
            raise UnknownCausation(
                f"causation {new.causation} names no earlier event of project {stream.project.slug}"
            )
        if new.id is not None:
            in_batch.add(new.id)


def append(
    stream: Stream,
    events: Sequence[NewEvent],
    *,
    branch: str = MAIN,
    expected_head: int | None | _Unset = UNSET,
    check_types: bool = True,
) -> Appended:
    """Append a batch of events to a branch: all of them, or none.

    ``expected_head`` is the version id the writer believes the branch points at
    (``None``: the branch must not exist yet); a moved head raises
    ``ConcurrencyConflict``. Event ids are idempotency keys: a batch that was
    already recorded returns its versions again and writes nothing. Payloads of types
    the project registered must fit their newest schema (``SchemaViolation``), unless
    ``check_types`` is off (the project's own records: its audit stream). Its time is
    measured (``continust.log.timing``).
    """
    started = time.perf_counter()
    outcome = timing.REFUSED
    try:
        appended = _append(
            stream, events, branch=branch, expected_head=expected_head, check_types=check_types
        )
        outcome = timing.RECORDED if appended.created else timing.REPEATED
        return appended
    finally:
        timing.APPEND_SECONDS.labels(outcome).observe(time.perf_counter() - started)


def _append(
    stream: Stream,
    events: Sequence[NewEvent],
    *,
    branch: str,
    expected_head: int | None | _Unset,
    check_types: bool,
) -> Appended:
    """The append itself, untimed (``append`` times it)."""
    if not events:
        raise InvalidEvent("a batch needs at least one event")
    if len(events) > settings.CONTINUST_MAX_BATCH_EVENTS:
        raise InvalidEvent(
            f"a batch holds at most {settings.CONTINUST_MAX_BATCH_EVENTS} events, not {len(events)}"
        )
    # Only ids the caller chose can name an earlier append; fresh ones need no look-up.
    retried = any(e.id is not None for e in events)
    events = [
        e if e.id is not None else NewEvent(**{**e.__dict__, "id": uuid.uuid4()}) for e in events
    ]
    if len({e.id for e in events}) != len(events):
        raise InvalidEvent("a batch carries the same event id twice")
    events = [validate_event(event) for event in events]
    if check_types:
        # The project is loaded with the stream by every surface; schema_revision 0 (no
        # type ever registered) looks nothing up.
        check_payloads(stream.project, [e for e in events if not is_internal(e.type)])
    # Validated as sent, then sealed; a retry is compared with what the caller sent
    # (sealing draws a new nonce each time).
    plain = {e.id: e.payload for e in events}
    events = [_sealed(stream, event) for event in events]
    if linear.usable():
        planned = linear.append(
            stream,
            events,
            branch,
            expected_head=None if isinstance(expected_head, _Unset) else expected_head,
            check_head=not isinstance(expected_head, _Unset),
        )
        if planned is not None:
            stream.event_count = planned.next_tip.event_count
            stream.last_hash = planned.next_tip.last_hash
            return Appended(versions=planned.versions, created=True, parents=planned.parents)
    try:
        with transaction.atomic():
            locked = lock_stream(stream)
            previous = _existing(locked, events, plain) if retried else None
            if previous is not None:
                return previous
            target = (
                Branch.objects.select_related("head").filter(stream=locked, name=branch).first()
            )
            _check_head(target, expected_head)
            if target is None and Version.objects.filter(stream=locked).exists():
                raise NotFound(
                    f"stream {locked.name} has no branch {branch!r}; fork it from a version first"
                )
            _check_causation(locked, events)
            versions = _fold_and_write(locked, events, target, branch)
    except IntegrityError as err:
        raise IdempotencyConflict(
            f"the batch collides with events recorded meanwhile: {err}"
        ) from err
    stream.event_count = locked.event_count
    stream.last_hash = locked.last_hash
    return Appended(versions=versions, created=True)


def _fold_and_write(
    stream: Stream, events: Sequence[NewEvent], target: Branch | None, branch: str
) -> list[Version]:
    reducer = get_reducer(stream.reducer, stream.reducer_version)
    policy = policy_of(stream)
    parent: Version | _PlannedVersion | None = target.head if target else None
    state: Any = state_of(target.head) if target else {}
    batch = Batch(stream)
    batch.reserve(len(events), len(events))
    for index, new in enumerate(events):
        event = batch.add_event(new)
        state = storable_state(
            fold_event(
                reducer.name,
                reducer.version,
                state,
                event_id=str(event.id),
                type=new.type,
                payload=new.payload,
                actor=new.actor,
            ),
            reducer=reducer.name,
            reducer_version=reducer.version,
            event_id=str(event.id),
        )
        generation = parent.generation + 1 if parent is not None else 0
        parent = batch.add_version(
            event,
            [parent] if parent is not None else [],
            state,
            reducer=reducer.name,
            reducer_version=reducer.version,
            branch=branch,
            store_state=policy.stores_at_append(
                generation, last=index == len(events) - 1, merge=False
            ),
        )
    if target is not None:
        versions = batch.commit(_Move(target, "append", events[-1].actor))
        moved = target
    else:
        versions = batch.commit()
        moved = move_branch(
            stream, branch, versions[-1], reason="append", actor=events[-1].actor, branch=None
        )
    _remember_tip(stream, moved, batch.planned[-1])
    return versions


def _remember_tip(stream: Stream, branch: Branch, head: _PlannedVersion) -> None:
    """Let the next append to this branch plan without reading (``continust.log.linear``)."""
    state_hash, state_text = canonical.hashed_state(head.state)
    tips.put(
        Tip(
            stream_id=stream.pk,
            event_count=stream.event_count,
            last_hash=stream.last_hash,
            reducer=stream.reducer,
            reducer_version=stream.reducer_version,
            retention=stream.retention,
            snapshot_every=stream.snapshot_every,
            branch_id=branch.pk,
            branch=branch.name,
            move_hash=branch.move_hash,
            head_id=head.id,
            head_digest=head.digest,
            head_generation=head.generation,
            head_state_hash=state_hash,
            head_state_text=state_text,
        )
    )


def fork(stream: Stream, name: str, at: Version, *, actor: str = "") -> Branch:
    """Create a branch that starts at any version of the stream."""
    name = name.strip()
    if not name or len(name) > 200 or any(ch.isspace() for ch in name):
        raise InvalidEvent("a branch name must be 1 to 200 characters without spaces")
    name = parse_new_branch_name(name)
    if at.stream_id != stream.pk:
        raise NotFound(f"version {at.pk} is not in stream {stream.name}")
    with transaction.atomic():
        locked = lock_stream(stream)
        if Branch.objects.filter(stream=locked, name=name).exists():
            raise AlreadyExists(f"stream {stream.name} already has a branch {name!r}")
        if Tag.objects.filter(stream=locked, name=name).exists():
            raise AlreadyExists(
                f"stream {stream.name} has a tag {name!r}; name the branch otherwise"
            )
        if is_released(at):
            raise StateReleased(
                f"version {at.pk}'s state was released by the stream's "
                "retention policy; fork from a version that is kept"
            )
        # A branch head is a snapshot under every policy.
        store_snapshots([at.pk])
        return move_branch(locked, name, at, reason="fork", actor=actor)


@dataclass(frozen=True)
class MergePlan:
    """What merging ``theirs`` into ``ours`` gives: the state, its conflicts, the bases."""

    ours: Version
    theirs: Version
    bases: list[int]
    state: Any
    conflicts: tuple[Conflict, ...]


def load_state(version_id: int) -> Any:
    """Return a version's state document."""
    return state_of(version_id)


def plan_merge(stream: Stream, ours: Version, theirs: Version) -> MergePlan:
    """Three-way merge two versions' states against their merge base(s), writing nothing."""
    graph = graph_for(stream)
    if graph.is_ancestor(theirs.pk, ours.pk):
        raise NothingToMerge(f"version {theirs.pk} is already contained in version {ours.pk}")
    state, conflicts, bases = merge_states(graph, load_state, ours.pk, theirs.pk)
    return MergePlan(ours, theirs, bases, state, conflicts)


def merge(
    stream: Stream,
    source: str,
    into: str,
    *,
    actor: str = "",
    resolutions: dict[str, Any] | None = None,
    expected_head: int | None | _Unset = UNSET,
    timestamp: datetime | None = None,
) -> Version:
    """Merge branch ``source`` into branch ``into`` with a merge event and version.

    Conflicting paths must each be resolved in ``resolutions`` (path -> value);
    otherwise ``MergeConflict`` lists them and nothing is written.
    """
    resolutions = dict(resolutions or {})
    with transaction.atomic():
        locked = lock_stream(stream)
        heads = {
            b.name: b
            for b in Branch.objects.select_related("head").filter(
                stream=locked, name__in=[source, into]
            )
        }
        for name in (source, into):
            if name not in heads:
                raise NotFound(f"stream {locked.name} has no branch {name!r}")
        if source == into:
            raise NothingToMerge("a branch cannot be merged into itself")
        _check_head(heads[into], expected_head)
        plan = plan_merge(locked, heads[into].head, heads[source].head)
        unresolved = [c for c in plan.conflicts if c.path not in resolutions]
        if unresolved:
            raise MergeConflict(
                f"merging {source} into {into} conflicts at "
                + ", ".join(c.path for c in unresolved),
                conflicts=unresolved,
            )
        unknown = set(resolutions) - {c.path for c in plan.conflicts}
        if unknown:
            raise InvalidEvent(f"resolutions name paths without conflict: {sorted(unknown)}")
        state = apply_resolutions(plan.state, resolutions)
        payload = {
            "into": into,
            "from": source,
            "parents": [plan.ours.digest, plan.theirs.digest],
            "resolutions": resolutions,
        }
        new = validate_event(
            NewEvent(type=MERGE_EVENT, payload=payload, actor=actor, timestamp=timestamp)
        )
        batch = Batch(locked)
        event = batch.add_event(new)
        batch.add_version(
            event,
            [plan.ours, plan.theirs],
            state,
            reducer=MERGE_REDUCER,
            reducer_version=1,
            branch=into,
        )
        (version,) = batch.commit()
        move_branch(locked, into, version, reason="merge", actor=actor)
    return version

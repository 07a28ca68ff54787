"""Reading a version's state, wherever it is: stored, cached, or recomputed.

Every version records the hash of its state, but a State row exists only where the
stream's retention policy keeps one (``continust.retention``). A state that is not
stored is recomputed here: one query walks first parents back to the nearest
version whose state is stored (or a merge, or the root) and returns the events on
the way, which are folded forward with each version's own reducer. The result must
hash to the version's recorded state hash, and is kept in Django's cache.

A version that compaction released has no state to give: ``StateReleased``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Exists, OuterRef

from continust.core.errors import NotFound, StateReleased
from continust.graph.cache import graph_for
from continust.log import canonical
from continust.log.folding import MERGE_REDUCER, derive_state, fold_event
from continust.log.rows import insert_states
from continust.models import ReleasedRun, ReleasedVersion, State, Stream, Version

CACHE_PREFIX = "continust:state:"
CACHE_SECONDS = 3600

# Each step of the walk reads its version once and carries what the fold needs (the
# reducer, the event, whether its state is stored or released, its first parent), so the
# rows are not looked up again after the walk; only the events are joined, and the state
# document only where the walk stopped at a stored one.
_VERSION_STEP = """v.id, {depth}, v.stream_id, v.state_id, v.reducer, v.reducer_version, v.event_id,
           EXISTS (SELECT 1 FROM continust_state s WHERE s.hash = v.state_id),
           EXISTS (SELECT 1 FROM continust_releasedversion r WHERE r.version_id = v.id),
           v.first_parent_id"""

_CHAIN = f"""
WITH RECURSIVE chain(id, depth, stream_id, state_id, reducer, reducer_version, event_id,
                     stored, released, parent) AS (
    SELECT {_VERSION_STEP.format(depth="0")}
    FROM continust_version v WHERE v.id = CAST(%s AS BIGINT)
  UNION ALL
    SELECT {_VERSION_STEP.format(depth="c.depth + 1")}
    FROM chain c JOIN continust_version v ON v.id = c.parent
    WHERE c.reducer <> %s AND NOT c.stored AND NOT c.released
)
SELECT c.id, c.stream_id, c.state_id, c.reducer, c.reducer_version, e.id, e.type, e.payload,
       e.actor, CASE WHEN c.stored THEN (SELECT s.data FROM continust_state s
                                         WHERE s.hash = c.state_id) END,
       c.released, c.parent IS NOT NULL
FROM chain c
JOIN continust_event e ON e.position = c.event_id
ORDER BY c.depth DESC
"""


class StateMismatch(StateReleased):
    """A recomputed state that does not hash to what its version recorded."""


def state_of(version: Version | int) -> Any:
    """Return a version's state document."""
    version_id = _id(version)
    # A recomputed state may be in the cache: look before walking.
    found = (
        Version.objects.filter(pk=version_id)
        .annotate(gone=Exists(ReleasedVersion.objects.filter(version_id=OuterRef("pk"))))
        .values_list("state_id", "gone")
        .first()
    )
    if found is not None and not found[1]:
        cached = cache.get(CACHE_PREFIX + found[0])
        if cached is not None:
            return cached
    with connection.cursor() as cursor:
        cursor.execute(_CHAIN, [version_id, MERGE_REDUCER])
        rows = cursor.fetchall()
    if not rows:
        raise NotFound(f"there is no version {version_id}")
    target = rows[-1]
    if target[10]:
        raise released_error(version_id)
    if target[9] is not None:
        return canonical.from_cursor(target[9])
    state = _fold(rows)
    computed = canonical.state_hash(state)
    if computed != target[2]:
        raise StateMismatch(
            f"version {version_id}'s state recomputes to {computed[:16]}…, "
            f"not to its recorded {target[2][:16]}…"
        )
    cache.set(CACHE_PREFIX + target[2], state, CACHE_SECONDS)
    return state


def _fold(rows: list[tuple[Any, ...]]) -> Any:
    (
        vid,
        stream_id,
        _,
        reducer,
        reducer_version,
        event_id,
        type_,
        payload,
        actor,
        data,
        released,
        has_parents,
    ) = rows[0]
    rest = rows[1:]
    if data is not None:
        state = canonical.from_cursor(data)
    elif released:
        raise StateReleased(
            f"version {rows[-1][0]} is recomputed from version {vid}, whose "
            "state its stream's retention policy released"
        )
    elif reducer == MERGE_REDUCER:
        graph = graph_for(Stream.objects.get(pk=stream_id))
        state = derive_state(
            graph,
            state_of,
            reducer=reducer,
            reducer_version=reducer_version,
            parents=list(graph.parents(vid)),
            event_id=str(event_id),
            type=type_,
            payload=canonical.from_cursor(payload),
            actor=actor,
        )
    elif not has_parents:
        state, rest = {}, rows  # the root folds its own event from nothing
    else:  # pragma: no cover - the walk stops only at the cases above
        raise AssertionError(f"the walk back from version {rows[-1][0]} stopped at {vid}")
    for _, _, _, reducer, reducer_version, event_id, type_, payload, actor, _, _, _ in rest:
        state = fold_event(
            reducer,
            reducer_version,
            state,
            event_id=str(event_id),
            type=type_,
            payload=canonical.from_cursor(payload),
            actor=actor,
        )
    return state


def states_of(versions: Iterable[Version | int]) -> dict[int, Any]:
    """Return several versions' states by version id: stored ones in one query."""
    ids = [_id(v) for v in versions]
    hashes = dict(Version.objects.filter(pk__in=ids).values_list("id", "state_id"))
    released = set(
        ReleasedVersion.objects.filter(version_id__in=ids).values_list("version_id", flat=True)
    )
    stored = dict(State.objects.filter(pk__in=set(hashes.values())).values_list("hash", "data"))
    found: dict[int, Any] = {}
    for vid in ids:
        if vid not in hashes:
            raise NotFound(f"there is no version {vid}")
        if vid in released:
            raise released_error(vid)
        found[vid] = stored[hashes[vid]] if hashes[vid] in stored else state_of(vid)
    return found


def is_released(version: Version | int) -> bool:
    """Tell whether compaction released a version's state."""
    return ReleasedVersion.objects.filter(version_id=_id(version)).exists()


def released_run(version: Version | int) -> ReleasedRun | None:
    """Return the released run a version belongs to, if compaction released it."""
    found = (
        ReleasedVersion.objects.select_related("run__compaction")
        .filter(version_id=_id(version))
        .first()
    )
    return found.run if found else None


def store_snapshots(version_ids: Iterable[int]) -> int:
    """Store the states of these versions where they are missing; return how many."""
    ids = list(version_ids)
    hashes = dict(Version.objects.filter(pk__in=ids).values_list("id", "state_id"))
    present = set(State.objects.filter(pk__in=set(hashes.values())).values_list("hash", flat=True))
    missing = {}
    for vid in ids:
        digest = hashes[vid]
        if digest not in present and digest not in missing:
            missing[digest] = state_of(vid)
    insert_states(missing)
    return len(missing)


def _id(version: Version | int) -> int:
    return version if isinstance(version, int) else version.pk


def released_error(version_id: int) -> StateReleased:
    """Return the error that says compaction released a version's state."""
    return StateReleased(
        f"the state of version {version_id} was released by its stream's retention policy"
    )

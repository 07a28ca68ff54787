"""How a version's state follows from its event and parents (invariant 5).

The store, ``verify``, the JSON Lines import and replays all derive states here,
so there is one definition of what a state must be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jsonpatch
import jsonpointer

from continust.core.errors import InvalidEvent, ReducerRejected
from continust.documents.diff import Conflict, three_way_merge
from continust.graph.lineage import VersionGraph
from continust.log import canonical
from continust.log.reducers import ReducerEvent, get_reducer

MERGE_EVENT = "continust.merge"
MERGE_REDUCER = "merge3"

LoadState = Callable[[int], Any]


def fold_event(
    reducer: str,
    reducer_version: int,
    parent_state: Any,
    *,
    event_id: str,
    type: str,
    payload: dict[str, Any],
    actor: str = "",
) -> Any:
    """Return the state an ordinary event makes from its (first) parent's state."""
    folded = get_reducer(reducer, reducer_version).apply(
        parent_state, ReducerEvent(id=event_id, type=type, payload=payload, actor=actor)
    )
    if not isinstance(folded, dict):
        raise InvalidEvent(
            f"reducer {reducer}@{reducer_version} made a {folded.__class__.__name__}, "
            f"not a JSON object, from event {event_id}"
        )
    return folded


def storable_state(state: Any, *, reducer: str, reducer_version: int, event_id: str) -> Any:
    """Return a folded state the database gives back as it is, or refuse it.

    The write paths call this on what a reducer made: a negative zero or a whole float
    of 1e16 or more would come back from PostgreSQL changed, and the stored hash would
    no longer match its state. (Payloads are normalised on the way in; a reducer's
    arithmetic is not, so it is refused, naming the event.)
    """
    try:
        kept = canonical.storable(state)
    except ValueError as err:
        raise ReducerRejected(
            f"reducer {reducer}@{reducer_version} made a state that cannot "
            f"be stored from event {event_id}: {err}",
            event_id=event_id,
        ) from err
    if kept is not state:
        raise ReducerRejected(
            f"reducer {reducer}@{reducer_version} made a state with a number the database "
            f"would give back changed (a negative zero, or a whole float of 1e16 or more) "
            f"from event {event_id}",
            event_id=event_id,
        )
    return state


def hashed_storable_state(
    state: Any, *, reducer: str, reducer_version: int, event_id: str
) -> tuple[str, str]:
    """Return the hash of a folded state and its canonical text, or refuse the state as
    ``storable_state`` does.

    The canonical text is made once and serves both the check and the hash: the walk of
    ``storable_state`` runs only when the text shows something it might change.
    """
    text = canonical.storable_text(state)
    if text is not None:
        return canonical.sha256_text(text), text
    storable_state(state, reducer=reducer, reducer_version=reducer_version, event_id=event_id)
    return canonical.hashed_state(state)


def virtual_base(graph: VersionGraph[int], load_state: LoadState, bases: Sequence[int]) -> Any:
    """Return the state to merge against: the one base, or the bases merged as git's recursive
    strategy does (each pair against its own merge base, ours winning inner conflicts)."""
    if not bases:
        return {}
    current = bases[0]
    merged = load_state(current)
    for other in bases[1:]:
        inner = sorted(graph.merge_bases(current, other))
        merged = three_way_merge(
            virtual_base(graph, load_state, inner), merged, load_state(other)
        ).state
        current = other
    return merged


def merge_states(
    graph: VersionGraph[int], load_state: LoadState, ours: int, theirs: int
) -> tuple[Any, tuple[Conflict, ...], list[int]]:
    """Three-way merge two versions against their merge base(s): state, conflicts, bases."""
    bases = sorted(graph.merge_bases(ours, theirs))
    result = three_way_merge(
        virtual_base(graph, load_state, bases), load_state(ours), load_state(theirs)
    )
    return result.state, tuple(result.conflicts), bases


def apply_resolutions(state: Any, resolutions: dict[str, Any]) -> Any:
    """Set each resolved path of a merged state to the value the user chose."""
    # "replace" where the path exists: "add" on a list index would insert a second item.
    operations = [
        {"op": "replace" if _exists(state, p) else "add", "path": p, "value": v}
        for p, v in resolutions.items()
    ]
    try:
        return jsonpatch.apply_patch(state, operations, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
        raise InvalidEvent(f"a resolution does not apply: {err}") from err


def _exists(document: Any, path: str) -> bool:
    try:
        jsonpointer.resolve_pointer(document, path)
    except jsonpointer.JsonPointerException:
        return False
    return True


def derive_state(
    graph: VersionGraph[int],
    load_state: LoadState,
    *,
    reducer: str,
    reducer_version: int,
    parents: Sequence[int],
    event_id: str,
    type: str,
    payload: dict[str, Any],
    actor: str = "",
) -> Any:
    """Return the state a version must have, given its event, parents and reducer."""
    if reducer == MERGE_REDUCER:
        if len(parents) != 2:
            raise InvalidEvent(f"merge event {event_id} needs two parents, not {len(parents)}")
        state, _, _ = merge_states(graph, load_state, parents[0], parents[1])
        return apply_resolutions(state, payload.get("resolutions") or {})
    base = load_state(parents[0]) if parents else {}
    return fold_event(
        reducer, reducer_version, base, event_id=event_id, type=type, payload=payload, actor=actor
    )

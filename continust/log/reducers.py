"""Reducers: pure functions ``(state, event) -> state``, registered by name and version.

Built in: ``merge`` (RFC 7396 merge patch: the payload is the patch), ``patch``
(RFC 6902 JSON Patch: the payload is ``{"patch": [operations]}``) and
``replace`` (the payload is the new state); and ``ours``, which keeps the first
parent's state: a promote version folds with it (``continust.replays.replay``).
More come from the setting ``CONTINUST_REDUCERS`` (``name:version=dotted.path``)
or from ``register``.
States are never mutated: a reducer returns a new document and may share
unchanged parts with the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch
from django.conf import settings
from django.utils.module_loading import import_string

from continust.core.errors import ContinustError, ReducerRejected
from continust.documents.diff import apply_merge_patch


@dataclass(frozen=True, slots=True)
class ReducerEvent:
    """What a reducer sees of an event."""

    id: str
    type: str
    payload: dict[str, Any]
    actor: str = ""


Fold = Callable[[Any, ReducerEvent], Any]


@dataclass(frozen=True)
class Reducer:
    """A registered reducer: ``fold`` turns a state and an event into the next state."""

    name: str
    version: int
    fold: Fold

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def apply(self, state: Any, event: ReducerEvent) -> Any:
        """Fold one event; turn any failure into ``ReducerRejected``."""
        try:
            return self.fold(state, event)
        except ReducerRejected:
            raise
        except Exception as err:
            raise ReducerRejected(
                f"reducer {self.label} rejected event {event.id} ({event.type}): {err}",
                event_id=event.id,
            ) from err


class UnknownReducer(ContinustError):
    """A reducer name or version that is not registered."""


def fold_merge(state: Any, event: ReducerEvent) -> Any:
    return apply_merge_patch(state, event.payload)


def fold_patch(state: Any, event: ReducerEvent) -> Any:
    operations = event.payload.get("patch")
    if not isinstance(operations, list):
        raise ReducerRejected(
            f'event {event.id}: the patch reducer needs a payload {{"patch": [operations]}}',
            event_id=event.id,
        )
    try:
        return jsonpatch.apply_patch(state, operations, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
        raise ReducerRejected(
            f"event {event.id}: JSON Patch does not apply: {err}", event_id=event.id
        ) from err


def fold_replace(state: Any, event: ReducerEvent) -> Any:
    return event.payload


def fold_ours(state: Any, event: ReducerEvent) -> Any:
    """Keep the first parent's state whatever the event says (``git merge -s ours``)."""
    return state


_REGISTRY: dict[tuple[str, int], Reducer] = {}
_loaded_settings = False


def register(name: str, version: int, fold: Fold) -> Reducer:
    """Register a reducer under a name and version; the pair must be new."""
    key = (name, version)
    if key in _REGISTRY and _REGISTRY[key].fold is not fold:
        raise ValueError(f"reducer {name}@{version} is already registered")
    reducer = Reducer(name, version, fold)
    _REGISTRY[key] = reducer
    return reducer


def _load_settings() -> None:
    global _loaded_settings
    if _loaded_settings:
        return
    for entry in settings.CONTINUST_REDUCERS:
        try:
            label, path = entry.split("=", 1)
            name, version = label.split(":", 1)
            register(name.strip(), int(version), import_string(path.strip()))
        except (ValueError, ImportError) as err:
            raise UnknownReducer(
                f"CONTINUST_REDUCERS entry {entry!r} is not name:version=dotted.path: {err}"
            ) from err
    _loaded_settings = True


def get_reducer(name: str, version: int | None = None) -> Reducer:
    """Return a registered reducer; the newest version when none is named."""
    _load_settings()
    if version is not None:
        try:
            return _REGISTRY[(name, version)]
        except KeyError:
            raise UnknownReducer(f"no reducer {name}@{version} is registered") from None
    versions = [r for (n, _), r in _REGISTRY.items() if n == name]
    if not versions:
        raise UnknownReducer(f"no reducer named {name!r} is registered")
    return max(versions, key=lambda r: r.version)


def registered() -> list[Reducer]:
    """Return every registered reducer, sorted by name and version."""
    _load_settings()
    return sorted(_REGISTRY.values(), key=lambda r: (r.name, r.version))


register("merge", 1, fold_merge)
register("patch", 1, fold_patch)
register("replace", 1, fold_replace)
# The reducer of a promote version: two parents, the first parent's state.
register("ours", 1, fold_ours)

"""Reading an event in its type's newest shape: the upcasters from the version it was
appended under to the newest, run in order. What is stored, and its hash, never changes.

An event's version is the newest one registered before it was appended (its position is
past that version's ``since_position``); an event appended before its type was
registered is read as version 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from continust.models import Event, Project
from continust.schemas import upcasters
from continust.schemas.registry import Registry, Step, registry_of


@dataclass(frozen=True)
class Upcast:
    """A payload as stored and as the newest version reads it."""

    stored: dict[str, Any]
    payload: dict[str, Any]
    from_version: int
    to_version: int

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version


def stored_version(chain: tuple[Step, ...], position: int) -> int:
    """The version an event at ``position`` was appended under."""
    version = 1
    for step in chain:
        if step.since_position < position:
            version = step.version
    return version


def upcast_payload(
    registry: Registry | None,
    type: str,
    payload: dict[str, Any],
    position: int,
    *,
    to: int | None = None,
) -> Upcast:
    """Upcast one payload to its type's newest version, or to version ``to`` (unchanged
    when there is nothing to do)."""
    chain = registry.steps.get(type, ()) if registry is not None else ()
    if to is not None:
        chain = tuple(step for step in chain if step.version <= to)
    if not chain:
        return Upcast(payload, payload, 1, 1)
    start = stored_version(chain, position)
    result = payload
    for step in chain:
        if step.version > start and (step.patch is not None or step.function):
            result = upcasters.apply(
                result,
                patch=step.patch,
                function=step.function,
                label=f"{type!r} v{step.version}",
            )
    return Upcast(payload, result, start, chain[-1].version)


def newest_versions(registry: Registry | None) -> dict[str, int]:
    """Each registered type's newest version: what a fold with upcasting reads."""
    if registry is None:
        return {}
    return {name: found.version for name, found in registry.types.items()}


def upcast(project: Project, event: Event) -> Upcast:
    """Return an event's payload as stored and in its type's newest shape."""
    return upcast_payload(registry_of(project), event.type, event.payload, event.position)


def upcast_events(project: Project, events: list[Event]) -> list[Event]:
    """Return the events with their payloads in the newest shape: copies where an upcaster
    ran, the same objects elsewhere (the stored ones are never changed)."""
    registry = registry_of(project)
    if registry is None:
        return events
    out: list[Event] = []
    for event in events:
        read = upcast_payload(registry, event.type, event.payload, event.position)
        if read.payload is event.payload:
            out.append(event)
            continue
        copy = Event(**{f.attname: getattr(event, f.attname) for f in Event._meta.concrete_fields})
        copy.payload = read.payload
        copy._state.adding = False
        copy._state.db = event._state.db
        if Event.stream.is_cached(event):
            copy.stream = event.stream
        out.append(copy)
    return out

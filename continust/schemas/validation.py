"""Checking the payloads of an append against the project's registry, before anything is
written: a payload that does not fit its type's newest schema refuses the whole batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from continust.core.errors import InvalidEvent
from continust.models import Project
from continust.schemas.registry import registry_of


class Typed(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


class SchemaViolation(InvalidEvent):
    """A payload that does not fit its type's newest schema, or a type the project does
    not take; ``path`` is the JSON Pointer of the failing part of the payload."""

    def __init__(
        self, message: str, *, path: str, index: int, type: str, version: int | None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.index = index
        self.type = type
        self.version = version


def pointer(parts: Sequence[str | int]) -> str:
    """Return an RFC 6901 JSON Pointer to a path of keys and indexes ('' for the root)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_payloads(project: Project, events: Sequence[Typed]) -> None:
    """Refuse the batch when one of its payloads does not fit its registered type, or its
    type is unregistered in a project that refuses those. Costs nothing for a project that
    never registered a type."""
    registry = registry_of(project)
    if registry is None:
        return
    for index, event in enumerate(events):
        registered = registry.types.get(event.type)
        if registered is None:
            if registry.refuse_unregistered:
                raise SchemaViolation(
                    f"event {index}: type {event.type[:200]!r} is not registered in project "
                    f"{project.slug}, which refuses unregistered types",
                    path="",
                    index=index,
                    type=event.type,
                    version=None,
                )
            continue
        try:
            error = best_match(registered.validator.iter_errors(event.payload))
        except Unresolvable as err:
            raise InvalidEvent(
                f"event {index}: the schema of {event.type!r} v{registered.version} "
                f"names a reference that cannot be resolved: {err}"
            ) from err
        if error is not None:
            path = pointer(list(error.absolute_path))
            raise SchemaViolation(
                f"event {index}: the payload does not fit {event.type!r} "
                f"v{registered.version} at {path or 'its root'}: "
                f"{' '.join(error.message.split())[:300]}",
                path=path,
                index=index,
                type=event.type,
                version=registered.version,
            )

"""Plain-dict records of the registry, as commands, the API and the explorer show them."""

from __future__ import annotations

from typing import Any

from continust.models import EventType, Project
from continust.schemas.registry import types


def upcaster_record(row: EventType) -> dict[str, Any] | None:
    """Return a version's upcaster from the previous version, or None (version 1)."""
    if row.upcast_patch is not None:
        return {"patch": row.upcast_patch}
    if row.upcast_function:
        return {"function": row.upcast_function}
    return None


def event_type_record(row: EventType) -> dict[str, Any]:
    """Return one version of a registered type as a JSON-ready dict."""
    return {
        "name": row.name,
        "version": row.version,
        "schema": row.schema,
        "upcaster": upcaster_record(row),
        "actor": row.actor,
        "created_at": row.created_at.isoformat(),
    }


def registry_record(project: Project) -> dict[str, Any]:
    """Return the project's registry: its setting and each type's newest version."""
    return {
        "unregistered_types": project.unregistered_types,
        "items": [event_type_record(row) for row in types(project)],
    }

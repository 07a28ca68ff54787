"""The event-type registry: each project's types, their JSON Schemas and versions.

``newest_schema(project, type)`` answers the schema an append of that type is checked
against (as registered, with any annotations such as ``"x-personal"``), or None. Compiled
validators are kept per process, keyed by the project's ``schema_revision``, which every
change of the registry or of the project's setting bumps: an append that loaded the
project sees the revision and never reads a stale registry, and a project that never
registered a type costs an append nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Max
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from continust.core.errors import InvalidEvent, NotFound
from continust.core.parsing import INTERNAL_TYPE_PREFIX
from continust.models import Event, EventType, Project, UnregisteredTypes

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# The log's own event types (a merge, a promote, a revert): never registered, never checked.
INTERNAL_PREFIX = INTERNAL_TYPE_PREFIX


def is_internal(name: str) -> bool:
    """Tell whether an event type is one the log writes itself."""
    return name.startswith(INTERNAL_PREFIX)


class InvalidSchema(InvalidEvent):
    """A JSON Schema that is not a valid Draft 2020-12 schema, or an upcaster that cannot be."""


class TypeExists(InvalidEvent):
    """A type registered already (evolve it instead)."""


@dataclass(frozen=True)
class Registered:
    """The newest version of a registered type, its validator compiled."""

    name: str
    version: int
    schema: dict[str, Any]
    validator: Draft202012Validator


@dataclass(frozen=True)
class Step:
    """One version of a type as upcasting reads it: from when it holds, and how to reach it
    from the previous version."""

    version: int
    since_position: int
    patch: list[dict[str, Any]] | None
    function: str


@dataclass(frozen=True)
class Registry:
    """A project's registry as of one revision: its types' newest versions, every version
    of each (oldest first), and its setting."""

    revision: int
    refuse_unregistered: bool
    types: dict[str, Registered]
    steps: dict[str, tuple[Step, ...]]
    # With the id, what tells this project from one that got its id after a deletion
    # (SQLite hands out the largest id again).
    created_at: Any = None


_cache: dict[int, Registry] = {}
_lock = threading.Lock()


def check_schema(schema: Any) -> dict[str, Any]:
    """Refuse a schema that is not a JSON object valid against the 2020-12 metaschema."""
    if not isinstance(schema, dict):
        raise InvalidSchema(f"a schema must be a JSON object, not {type(schema).__name__}")
    declared = schema.get("$schema", DRAFT)
    if declared != DRAFT:
        raise InvalidSchema(f"the schema declares {str(declared)[:100]!r}; only {DRAFT} is read")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        raise InvalidSchema(f"the schema is not valid: {err.message}") from err
    return schema


def registry_of(project: Project) -> Registry | None:
    """The project's registry at its current revision, from this process's cache or one
    query; None for a project that never registered a type and allows unregistered ones."""
    revision = project.schema_revision
    if revision == 0:
        return None
    found = _cache.get(project.pk)
    if found is not None and found.revision == revision and found.created_at == project.created_at:
        return found
    loaded = load(project)
    with _lock:
        current = _cache.get(project.pk)
        if (
            current is None
            or current.revision <= revision
            or current.created_at != project.created_at
        ):
            _cache[project.pk] = loaded
    return loaded


def load(project: Project) -> Registry:
    """The project's registry as its rows say now, not cached: what a change still inside
    its transaction reads (it may roll back; the cache must never hold it)."""
    revision = project.schema_revision
    newest: dict[str, EventType] = {}
    steps: dict[str, list[Step]] = {}
    for row in EventType.objects.filter(project_id=project.pk).order_by("name", "version"):
        newest[row.name] = row
        steps.setdefault(row.name, []).append(
            Step(row.version, row.since_position, row.upcast_patch, row.upcast_function)
        )
    return Registry(
        revision,
        project.unregistered_types == UnregisteredTypes.REFUSE,
        {
            name: Registered(name, row.version, row.schema, Draft202012Validator(row.schema))
            for name, row in newest.items()
        },
        {name: tuple(chain) for name, chain in steps.items()},
        project.created_at,
    )


def newest_schema(project: Project, name: str) -> dict[str, Any] | None:
    """Return the newest registered JSON Schema of the project's event type ``name``, as
    registered (annotations included), or None when the type is not registered."""
    registry = registry_of(project)
    if registry is None:
        return None
    found = registry.types.get(name)
    return found.schema if found is not None else None


def newest(project: Project, name: str) -> EventType | None:
    """Return the newest version row of a registered type, or None."""
    return EventType.objects.filter(project=project, name=name).order_by("-version").first()


def versions(project: Project, name: str) -> list[EventType]:
    """Return every version of a registered type, oldest first; NotFound if there is none."""
    rows = list(EventType.objects.filter(project=project, name=name).order_by("version"))
    if not rows:
        raise NotFound(f"project {project.slug} has no event type {name!r} registered")
    return rows


def types(project: Project) -> list[EventType]:
    """Return the newest version of every registered type, by name."""
    rows: dict[str, EventType] = {}
    for row in EventType.objects.filter(project=project).order_by("name", "version"):
        rows[row.name] = row
    return list(rows.values())


def last_position(project: Project) -> int:
    """The project's last event position (0 for an empty log)."""
    found = Event.objects.filter(project_id=project.pk).aggregate(last=Max("position"))["last"]
    return int(found or 0)


def bump(project: Project) -> None:
    """Count a change of the project's registry or setting (call inside its transaction)."""
    Project.objects.filter(pk=project.pk).update(schema_revision=F("schema_revision") + 1)
    project.refresh_from_db(fields=["schema_revision", "unregistered_types"])


def lock(project: Project) -> Project:
    """Take the project's row lock, so registry changes queue up; call inside a transaction."""
    assert transaction.get_connection().in_atomic_block
    return Project.objects.select_for_update().get(pk=project.pk)

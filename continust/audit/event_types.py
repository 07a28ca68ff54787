"""Changes to a project's event-type registry, each recorded in its audit stream.

Admins register a type with its JSON Schema, evolve it to a new version with an upcaster
from the previous one, and choose whether the project takes types nobody registered.
Every change bumps the project's ``schema_revision``, so appends see it at once.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from django.db import transaction

from continust.audit.trail import record
from continust.core.errors import InvalidEvent
from continust.core.parsing import NAME_MAX, NAME_PATTERN
from continust.log import canonical
from continust.log.subjects import schema_marks
from continust.models import Event, EventType, Project, UnregisteredTypes
from continust.schemas import registry, upcasters
from continust.schemas.registry import InvalidSchema, Registry, Step, TypeExists, check_schema
from continust.schemas.upcasting import upcast_payload

REGISTERED: Final = "schema.registered"
EVOLVED: Final = "schema.evolved"
SETTING_CHANGED: Final = "schema.unregistered_types"


def check_type_name(name: Any) -> str:
    """Refuse a name no event could carry, or one of the log's own types."""
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name) or len(name) > NAME_MAX:
        raise InvalidEvent(
            f"{str(name)[:200]!r} cannot be registered: a registered type's name is 1 to "
            f"{NAME_MAX} characters without white space or control characters"
        )
    try:
        canonical.storable(name)
    except ValueError as err:
        raise InvalidEvent(f"the event type is refused: {err}") from err
    if registry.is_internal(name):
        raise InvalidEvent(f"types starting with {registry.INTERNAL_PREFIX!r} are the log's own")
    return name


def _storable_schema(schema: Any) -> dict[str, Any]:
    checked = check_schema(schema)
    try:
        # Personal properties need the one property that names their data subject.
        schema_marks(checked, "")
    except InvalidEvent:
        raise InvalidSchema(
            'the schema marks personal properties ("x-personal": true), so it must mark '
            'exactly one property "x-subject": true to name their data subject'
        ) from None
    try:
        stored: dict[str, Any] = canonical.storable(checked)
    except (TypeError, ValueError) as err:
        raise InvalidSchema(f"the schema is not JSON the log can store: {err}") from err
    return stored


def check_registration(project: Project, name: str, schema: Any) -> dict[str, Any]:
    """Refuse what ``register`` would refuse, writing nothing (what a confirmation asks
    about first); return the schema as it would be stored."""
    name = check_type_name(name)
    stored = _storable_schema(schema)
    if EventType.objects.filter(project=project, name=name).exists():
        raise TypeExists(f"{name!r} is registered in {project.slug} already; evolve it")
    return stored


def register(project: Project, name: str, schema: Any, *, actor: str) -> EventType:
    """Register a new type at version 1; appends of it are checked from now on."""
    name = check_type_name(name)
    stored = _storable_schema(schema)
    with transaction.atomic():
        locked = registry.lock(project)
        if EventType.objects.filter(project=locked, name=name).exists():
            raise TypeExists(f"{name!r} is registered in {project.slug} already; evolve it")
        row = EventType.objects.create(
            project=locked,
            name=name,
            version=1,
            schema=stored,
            since_position=registry.last_position(locked),
            actor=actor,
        )
        registry.bump(project)
        record(project, REGISTERED, {"type": name, "version": 1, "schema": stored}, actor=actor)
    return row


def evolve(
    project: Project,
    name: str,
    schema: Any,
    *,
    patch: Any = None,
    function: str = "",
    actor: str,
) -> EventType:
    """Register the next version of a type, with its upcaster from the previous version:
    a JSON Patch (``patch``) or a registered function's dotted path (``function``)."""
    stored, patch = _checked_evolution(schema, patch, function)
    with transaction.atomic():
        locked = registry.lock(project)
        previous = registry.newest(locked, name)
        if previous is None:
            raise InvalidEvent(f"{name[:200]!r} is not registered in {project.slug}; register it")
        row = EventType.objects.create(
            project=locked,
            name=name,
            version=previous.version + 1,
            schema=stored,
            upcast_patch=patch,
            upcast_function=function,
            since_position=registry.last_position(locked),
            actor=actor,
        )
        registry.bump(project)
        _try_on_stored_events(project, name, registry.load(project), row.version)
        record(
            project,
            EVOLVED,
            {
                "type": name,
                "version": row.version,
                "schema": stored,
                "upcaster": {"patch": patch} if patch is not None else {"function": function},
            },
            actor=actor,
        )
    return row


def _checked_evolution(schema: Any, patch: Any, function: str) -> tuple[dict[str, Any], Any]:
    stored = _storable_schema(schema)
    if (patch is None) == (not function):
        raise InvalidEvent("an evolution needs one upcaster: a JSON Patch or a function")
    if patch is not None:
        upcasters.checked_patch(patch)
        patch = canonical.storable(patch)
    else:
        upcasters.registered_function(function)
    return stored, patch


def check_evolution(
    project: Project, name: str, schema: Any, *, patch: Any = None, function: str = ""
) -> None:
    """Refuse what ``evolve`` would refuse, writing nothing (what a confirmation asks
    about first): the schema, the upcaster, and the upcaster on every stored event."""
    _, patch = _checked_evolution(schema, patch, function)
    previous = registry.newest(project, name)
    if previous is None:
        raise InvalidEvent(f"{name[:200]!r} is not registered in {project.slug}; register it")
    current = registry.registry_of(project)
    assert current is not None  # a registered type: the registry has a revision
    step = Step(previous.version + 1, registry.last_position(project), patch, function)
    chain = (*current.steps.get(name, ()), step)
    prospective = replace(current, steps={**current.steps, name: chain})
    _try_on_stored_events(project, name, prospective, step.version)


def _try_on_stored_events(
    project: Project, name: str, found: Registry | None, version: int
) -> None:
    """Upcast every stored event of the type to the new version, as reads will; refuse the
    evolution (its transaction rolls back) naming the first event an upcaster fails on, so
    that no read of an old event can fail later. One pass over the type's events."""
    events = (
        Event.objects.filter(project=project, type=name, payload__isnull=False)
        .select_related("stream")
        .only("id", "seq", "position", "payload", "stream__name")
        .order_by("position")
    )
    for event in events.iterator(chunk_size=1000):
        try:
            upcast_payload(found, name, event.payload, event.position, to=version)
        except InvalidEvent as err:
            raise upcasters.UpcastFailed(
                f"{err}, on {event.stream.name} #{event.seq} ({event.id}) of the events already "
                f"stored; nothing was registered: fix the upcaster so that it reads every one"
            ) from err


def set_unregistered_types(project: Project, choice: str, *, actor: str) -> Project:
    """Allow or refuse events of types the project did not register."""
    if choice not in UnregisteredTypes.values:
        raise InvalidEvent(f"{choice[:40]!r} is neither of {', '.join(UnregisteredTypes.values)}")
    with transaction.atomic():
        locked = registry.lock(project)
        if locked.unregistered_types == choice:
            project.unregistered_types = choice
            return project
        before = locked.unregistered_types
        type(project).objects.filter(pk=project.pk).update(unregistered_types=choice)
        registry.bump(project)
        record(project, SETTING_CHANGED, {"from": before, "to": choice}, actor=actor)
    return project

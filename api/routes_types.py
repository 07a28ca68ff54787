"""The event-type registry over HTTP: list a project's types, register one, evolve it with an
upcaster, and choose whether unregistered types are taken.

Reading needs membership; changing the registry needs a write-scoped token and the admin
role, as on the explorer's *Event types* page. Every change is an audit event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict, Field

from api.access import project_for, token_of
from api.errors import READ_ERRORS, WRITE_ERRORS
from api.schemas import PAYLOAD_SCHEMA, Schema, SlugPath, StrictSchema
from continust.audit import event_types
from continust.core.parsing import NAME_MAX, NAME_PATTERN
from continust.models import Project, Role
from continust.schemas import registry
from continust.schemas.records import event_type_record, registry_record

router = Router(tags=["event types"])

PROJECT = "/projects/{slug:slug}"
TYPE = PROJECT + "/types/{streamname:typename}"
TypePath = Annotated[
    str,
    param.Path(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX,
        description="A registered event type's name; it may contain `/`.",
    ),
]
TypeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="The event type: no white space or control character; `continust.` "
        "starts the log's own types, which cannot be registered.",
    ),
]
SCHEMA_FIELD = Field(
    alias="schema",
    description="A JSON Schema (Draft 2020-12), checked against its metaschema; kept as "
    "given, annotations (such as `x-personal`) included.",
    json_schema_extra=PAYLOAD_SCHEMA,
)
EXAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "minimum": 0}},
    "required": ["amount"],
}
TYPE_EXAMPLE: dict[str, Any] = {
    "name": "order.placed",
    "version": 2,
    "schema": {
        "type": "object",
        "properties": {"cents": {"type": "integer"}},
        "required": ["cents"],
    },
    "upcaster": {"patch": [{"op": "move", "from": "/amount", "path": "/cents"}]},
    "actor": "alice",
    "created_at": "2026-12-06T19:40:00+00:00",
}
ADMIN_ERRORS: dict[int, type] = {**WRITE_ERRORS}


class TypeOut(Schema):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [TYPE_EXAMPLE]})

    name: str
    version: int = Field(description="1 when registered, one more with each evolution.")
    json_schema: dict[str, Any] = Field(alias="schema", json_schema_extra=PAYLOAD_SCHEMA)
    upcaster: dict[str, Any] | None = Field(
        description='From the previous version: `{"patch": [RFC 6902 operations]}` or '
        '`{"function": "dotted.path"}`; null on version 1.'
    )
    actor: str
    created_at: str


class RegistryOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"unregistered_types": "allow", "items": [TYPE_EXAMPLE]}]}
    )

    unregistered_types: Literal["allow", "refuse"] = Field(
        description="Whether events of a type not registered here are appended."
    )
    items: list[TypeOut] = Field(description="Each registered type's newest version, by name.")


class TypeHistoryOut(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "order.placed",
                    "versions": [
                        {
                            "name": "order.placed",
                            "version": 1,
                            "schema": EXAMPLE_SCHEMA,
                            "upcaster": None,
                            "actor": "alice",
                            "created_at": "2026-12-01T09:30:00+00:00",
                        },
                        TYPE_EXAMPLE,
                    ],
                }
            ]
        }
    )

    name: str
    versions: list[TypeOut] = Field(description="Oldest first.")


class TypeIn(StrictSchema):
    """A type to register at version 1."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"examples": [{"name": "order.placed", "schema": EXAMPLE_SCHEMA}]},
    )

    name: TypeName
    json_schema: dict[str, Any] = SCHEMA_FIELD


class PatchUpcaster(StrictSchema):
    """A declarative upcaster."""

    patch: list[dict[str, Any]] = Field(
        max_length=1000,
        description="RFC 6902 operations that turn a payload of the previous version into "
        "this one.",
        json_schema_extra={"items": {"type": "object", **PAYLOAD_SCHEMA}},
    )


class FunctionUpcaster(StrictSchema):
    """An upcaster written in Python."""

    function: str = Field(
        min_length=1,
        max_length=300,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        description="The dotted path of a function registered with "
        "`continust.schemas.upcasters.upcaster`.",
    )


class EvolveIn(StrictSchema):
    """The next version of a type, and how payloads of the previous one read in it."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "schema": TYPE_EXAMPLE["schema"],
                    "upcaster": TYPE_EXAMPLE["upcaster"],
                }
            ]
        },
    )

    json_schema: dict[str, Any] = SCHEMA_FIELD
    upcaster: PatchUpcaster | FunctionUpcaster = Field(
        description="Exactly one of `patch` and `function`."
    )


class SettingIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"unregistered_types": "refuse"}]}
    )

    unregistered_types: Literal["allow", "refuse"]


def _administered(request: HttpRequest, slug: str) -> Project:
    return project_for(
        request, slug, write=True, role=Role.ADMIN, doing="changing the event types of"
    )


def _actor(request: HttpRequest) -> str:
    return token_of(request).user.get_username()


@router.get(PROJECT + "/types", response={200: RegistryOut, **READ_ERRORS}, by_alias=True)
def list_types(request: HttpRequest, slug: SlugPath) -> dict[str, Any]:
    """List the project's registered event types (each one's newest version) and whether
    it takes types it did not register."""
    return registry_record(project_for(request, slug))


@router.post(PROJECT + "/types", response={201: TypeOut, **ADMIN_ERRORS}, by_alias=True)
def register_type(request: HttpRequest, slug: SlugPath, body: TypeIn) -> Status[dict[str, Any]]:
    """Register an event type at version 1 (write scope, admin role): appends of it are
    checked against its schema from now on; a payload that does not fit answers 422
    `schema_violation` with the failing `path`. 422 `invalid_schema` for a schema its
    metaschema refuses, 409 `type_exists` for a type registered already."""
    project = _administered(request, slug)
    row = event_types.register(project, body.name, body.json_schema, actor=_actor(request))
    return Status(201, event_type_record(row))


@router.get(TYPE + "/versions", response={200: TypeHistoryOut, **READ_ERRORS}, by_alias=True)
def get_type(request: HttpRequest, slug: SlugPath, typename: TypePath) -> dict[str, Any]:
    """Every version of a registered type, oldest first, each with its upcaster."""
    rows = registry.versions(project_for(request, slug), typename)
    return {"name": typename, "versions": [event_type_record(row) for row in rows]}


@router.post(TYPE + "/versions", response={201: TypeOut, **ADMIN_ERRORS}, by_alias=True)
def evolve_type(
    request: HttpRequest, slug: SlugPath, typename: TypePath, body: EvolveIn
) -> Status[dict[str, Any]]:
    """Register the next version of a type with its upcaster from the previous version
    (write scope, admin role). Old events keep their stored bytes and hashes; every read
    shows them in the new shape. 404 for a type not registered, 422 `invalid_schema` or
    `invalid_event` for a schema or an upcaster that cannot be."""
    project = _administered(request, slug)
    registry.versions(project, typename)  # 404 before anything else
    row = event_types.evolve(
        project,
        typename,
        body.json_schema,
        patch=body.upcaster.patch if isinstance(body.upcaster, PatchUpcaster) else None,
        function=body.upcaster.function if isinstance(body.upcaster, FunctionUpcaster) else "",
        actor=_actor(request),
    )
    return Status(201, event_type_record(row))


@router.put(PROJECT + "/types-setting", response={200: RegistryOut, **ADMIN_ERRORS}, by_alias=True)
def set_unregistered_types(request: HttpRequest, slug: SlugPath, body: SettingIn) -> dict[str, Any]:
    """Allow (the default) or refuse appends of types the project did not register (write
    scope, admin role); a refused one answers 422 `schema_violation`."""
    project = _administered(request, slug)
    event_types.set_unregistered_types(project, body.unregistered_types, actor=_actor(request))
    return registry_record(project)

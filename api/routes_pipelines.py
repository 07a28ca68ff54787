"""Pipelines a user defines, over HTTP: list, create from a spec, show, update, pause,
resume and delete a project's pipelines.

Reading needs membership; creating, updating, pausing and resuming need a write-scoped
token and the editor role; deleting needs the admin role (403 below it, 404 for
strangers). A spec that does not validate is a 422 ``invalid_pipeline`` whose ``path``
(a JSON Pointer into the spec) names where; changing or deleting a pipeline that runs
is a 409 ``pipeline_running``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict

from api.access import project_for, token_of
from api.errors import READ_ERRORS, error_response
from api.pagination import keyset_page
from api.schemas import PAYLOAD_SCHEMA, Error, PageQuery, SlugPath, StrictSchema
from continust.models import Pipeline, Project, Role
from continust.pipelines import control
from continust.pipelines.records import pipeline_record
from continust.pipelines.registry import InvalidPipeline
from continust.pipelines.specs import InvalidSpec

router = Router(tags=["pipelines"])

PIPELINES = "/projects/{slug:slug}/pipelines"
PIPELINE = PIPELINES + "/{pipeline}"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
NamePath = Annotated[
    str,
    param.Path(
        pattern=NAME_PATTERN, max_length=64, description="A pipeline's name (lower-case, dashes)."
    ),
]
CHANGE_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error, 409: Error}
SPEC_ERRORS: dict[int, type] = {**CHANGE_ERRORS, 422: Error}

EXAMPLE_SPEC: dict[str, Any] = {
    "description": "Clicks per page per minute",
    "sources": [{"name": "web", "streams": ["web"], "types": ["click"]}],
    "steps": [
        {"filter": {"pointer": "/payload/page", "op": "exists"}},
        {
            "window": {
                "type": "tumbling",
                "size_ms": 60000,
                "out_of_orderness_ms": 5000,
                "key": "/payload/page",
            }
        },
    ],
    "sink": {
        "table": {
            "name": "clicks_per_minute",
            "key": ["page", "minute"],
            "columns": {
                "page": {"pointer": "/key", "type": "text"},
                "minute": {"pointer": "/start", "type": "integer"},
                "clicks": {"pointer": "/count", "type": "integer"},
            },
        }
    },
}
SPEC_DESCRIPTION = (
    "The pipeline's spec (docs/pipelines.md, 'Pipelines a user defines'): `sources` "
    "(streams by name, event types), `steps` (`filter`, `map` by JSON Pointer, one `window`: "
    "tumbling, sliding or session, with out-of-orderness and allowed lateness) and a `sink` "
    "(`table`, `webhook` by id, or `jsonl` file). Checked on the server; a spec that does "
    "not validate is a 422 `invalid_pipeline` naming the failing path."
)

PIPELINE_EXAMPLE: dict[str, Any] = {
    "name": "clicks",
    "definition": "spec",
    "params": None,
    "spec": EXAMPLE_SPEC,
    "status": "running",
    "enabled": True,
    "running": True,
    "worker": "worker-1",
    "error": "",
    "checkpoint": {
        "epoch": 42,
        "cursor": [{"position": 812, "gaps": []}],
        "committed_at": "2026-12-06T04:00:00.000000+00:00",
        "pending": 0,
    },
    "lag": 3,
    "events": 5120,
    "results": 96,
    "late_events": 2,
    "created_at": "2026-12-01T09:30:00.000000+00:00",
    "created_by": "alice",
}


class PipelineIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "clicks", "spec": EXAMPLE_SPEC, "start": True}]},
    )

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=64,
        description="Lower-case letters, digits and dashes; unique in the project; not `new`.",
        examples=["clicks"],
    )
    spec: dict[str, Any] = Field(
        description=SPEC_DESCRIPTION, examples=[EXAMPLE_SPEC], json_schema_extra=PAYLOAD_SCHEMA
    )
    start: bool = Field(False, description="Start it at once (a worker picks it up).")


class PipelineUpdate(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"spec": EXAMPLE_SPEC, "reset": False}]}
    )

    spec: dict[str, Any] = Field(
        description=SPEC_DESCRIPTION, examples=[EXAMPLE_SPEC], json_schema_extra=PAYLOAD_SCHEMA
    )
    reset: bool = Field(
        False,
        description="Start over from the beginning of the log: the sink is emptied (every "
        "row of its table, when the pipeline owns the table: created or adopted by it; a "
        "table it does not own keeps its rows). Without it, a spec the committed progress "
        "cannot go on with is a 409.",
    )


class CheckpointOut(StrictSchema):
    epoch: int = Field(description="The last epoch committed to the sink.")
    cursor: list[Any] = Field(description="Each source's committed log cursor.")
    committed_at: str | None
    pending: int = Field(description="Stage checkpoints of epochs not committed yet.")


class PipelineOut(StrictSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PIPELINE_EXAMPLE]})

    name: str
    definition: str = Field(description="`spec` for a pipeline defined by its spec.")
    params: dict[str, Any] | None = Field(description="A registered definition's parameters.")
    spec: dict[str, Any] | None = Field(description="The spec, for one defined by it.")
    status: Literal["idle", "waiting", "running", "paused", "failed"]
    enabled: bool = Field(description="Asked to run.")
    running: bool = Field(description="A worker holds it now.")
    worker: str
    error: str
    checkpoint: CheckpointOut
    lag: int = Field(description="Log positions between its slowest source and the log's head.")
    events: int
    results: int
    late_events: int
    created_at: str
    created_by: str


class PipelinePage(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [PIPELINE_EXAMPLE], "next": None}]},
    )

    items: list[PipelineOut]
    next: str | None


class DeletedOut(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "pipeline": "clicks",
                    "runs": 3,
                    "checkpoints": 0,
                    "window_results": 96,
                    "late_events": 2,
                    "webhook_deliveries": 0,
                    "kept": "table clicks_per_minute",
                }
            ]
        },
    )

    pipeline: str
    runs: int
    checkpoints: int
    window_results: int
    late_events: int
    webhook_deliveries: int = Field(description="Its webhook deliveries, sent or not.")
    kept: str = Field(description="What it wrote that stays: its table or its file.")


class InvalidPipelineOut(Error):
    path: str | None = Field(
        None, description="For `invalid_pipeline`: a JSON Pointer into the spec, where it fails."
    )
    problems: list[dict[str, str]] = Field(
        default_factory=list, description="Every problem found: `path` and `message`."
    )


SPEC_RESPONSES: dict[int, type] = {**CHANGE_ERRORS, 422: InvalidPipelineOut}


def _readable(request: HttpRequest, slug: str) -> Project:
    return project_for(request, slug)


def _writable(request: HttpRequest, slug: str, role: str = Role.EDITOR) -> Project:
    return project_for(request, slug, write=True, role=role, doing="changing the pipelines of")


@router.get(PIPELINES, response={200: PipelinePage, **READ_ERRORS})
def list_pipelines(request: HttpRequest, slug: SlugPath, page: Query[PageQuery]) -> dict[str, Any]:
    """List the project's pipelines (by id), each with its status, checkpoint and lag."""
    project = _readable(request, slug)
    rows, next_cursor = keyset_page(
        Pipeline.objects.filter(project=project), "id", page.after, page.limit, int
    )
    return {"items": [pipeline_record(p) for p in rows], "next": next_cursor}


@router.post(PIPELINES, response={201: PipelineOut, **SPEC_RESPONSES})
def create_pipeline(request: HttpRequest, slug: SlugPath, body: PipelineIn) -> Status[Any]:
    """Create a pipeline from a spec (write scope, editor), stopped unless `start`.

    422 `invalid_pipeline` for a spec that does not validate (`path` names where), 409
    `already_exists` for a name taken.
    """
    project = _writable(request, slug)
    if Pipeline.objects.filter(project=project, name=body.name).exists():
        return Status(
            409, {"code": "already_exists", "detail": f"a pipeline {body.name} exists already"}
        )
    actor = token_of(request).user.get_username()
    pipeline = control.create_from_spec(project, body.name, body.spec, actor=actor)
    if body.start:
        pipeline = control.start(pipeline)
    return Status(201, pipeline_record(pipeline))


@router.get(PIPELINE, response={200: PipelineOut, **READ_ERRORS})
def get_pipeline(request: HttpRequest, slug: SlugPath, pipeline: NamePath) -> dict[str, Any]:
    """Return one pipeline: its spec, status, checkpoint (epoch, cursors) and lag."""
    return pipeline_record(control.get_pipeline(_readable(request, slug), pipeline))


@router.put(PIPELINE, response={200: PipelineOut, **SPEC_RESPONSES})
def update_pipeline(
    request: HttpRequest, slug: SlugPath, pipeline: NamePath, body: PipelineUpdate
) -> dict[str, Any]:
    """Give a stopped pipeline a new spec (write scope, editor).

    409 `pipeline_running` while it runs or is asked to (pause it first), or when its
    committed progress cannot go on with the new spec (send `reset`); 422
    `invalid_pipeline` naming the failing path.
    """
    found = control.get_pipeline(_writable(request, slug), pipeline)
    updated = control.update_spec(found, body.spec, reset_progress=body.reset)
    return pipeline_record(updated)


@router.post(PIPELINE + "/pause", response={200: PipelineOut, **CHANGE_ERRORS})
def pause_pipeline(request: HttpRequest, slug: SlugPath, pipeline: NamePath) -> dict[str, Any]:
    """Ask the pipeline to stop: its worker commits the epochs in flight and lets go."""
    found = control.get_pipeline(_writable(request, slug), pipeline)
    return pipeline_record(control.pause(found))


@router.post(PIPELINE + "/resume", response={200: PipelineOut, **CHANGE_ERRORS})
def resume_pipeline(request: HttpRequest, slug: SlugPath, pipeline: NamePath) -> dict[str, Any]:
    """Ask the pipeline to run: a worker takes it up from its last commit."""
    found = control.get_pipeline(_writable(request, slug), pipeline)
    return pipeline_record(control.resume(found))


@router.delete(PIPELINE, response={200: DeletedOut, **CHANGE_ERRORS})
def delete_pipeline(request: HttpRequest, slug: SlugPath, pipeline: NamePath) -> dict[str, Any]:
    """Delete a pipeline no worker holds (write scope, admin) with its runs, checkpoints,
    window results, late events and webhook deliveries. Its table or file stays.
    409 `pipeline_running` while a worker holds it."""
    found = control.get_pipeline(_writable(request, slug, Role.ADMIN), pipeline)
    return control.delete_pipeline(found)


def _on_invalid_spec(request: HttpRequest, exc: Any) -> HttpResponse:
    problems = [p.to_json() for p in exc.problems]
    return error_response(422, "invalid_pipeline", str(exc), path=exc.path, problems=problems)


def _on_invalid_pipeline(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(422, "invalid_pipeline", str(exc), path=None, problems=[])


def _on_busy(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(409, "pipeline_running", str(exc))


def install(api: Any) -> None:
    """Register the pipelines' error answers on the API."""
    api.add_exception_handler(InvalidSpec, _on_invalid_spec)
    api.add_exception_handler(InvalidPipeline, _on_invalid_pipeline)
    api.add_exception_handler(control.PipelineBusy, _on_busy)

"""What users do with a project's pipelines: create, start, pause, resume, reset, watch.

Starting records the wish (``enabled``) and a task message in one transaction
(``continust.jobs.outbox``); a worker then claims the pipeline (``runner.take``, the
lease protocol of ``continust.jobs.leases``).
Pausing clears the wish: the owner notices at its next heartbeat, commits the
epochs in flight and lets go. Resetting needs the pipeline let go of: it empties
the sink and the checkpoints and starts the cursor over, and takes a new fencing
token so that nothing of an earlier run can commit afterwards.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from continust.core.errors import ContinustError, NotFound
from continust.jobs import leases, outbox
from continust.models import (
    LateEvent,
    Pipeline,
    PipelineCheckpoint,
    PipelineStatus,
    Project,
    WebhookDelivery,
    WindowResult,
)
from continust.pipelines import registry, specs, tables
from continust.pipelines.registry import InvalidPipeline
from continust.pipelines.runner import PIPELINES, TASK
from continust.pipelines.sinks import SinkRefused
from continust.pipelines.stages import WindowStage
from continust.pipelines.user_sinks import TableSink

__all__ = [
    "PipelineBusy",
    "SPEC_DEFINITION",
    "create_pipeline",
    "create_from_spec",
    "delete_pipeline",
    "update_spec",
    "describe",
    "get_pipeline",
    "latest_windows",
    "pause",
    "reset",
    "reset_plan",
    "resend_stale",
    "resume",
    "start",
]

# The ``definition`` of a pipeline that runs its own spec.
SPEC_DEFINITION = "spec"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A heartbeat older than this many seconds means the figures shown are stale.
FRESH_SECONDS = 5


class PipelineBusy(ContinustError):
    """A live run holds the pipeline; the action needs it let go of first."""


def get_pipeline(project: Project, name: str) -> Pipeline:
    """The pipeline of the project called ``name``."""
    try:
        return Pipeline.objects.select_related("project").get(project=project, name=name)
    except Pipeline.DoesNotExist:
        raise NotFound(f"project {project.slug} has no pipeline {name!r}") from None


def create_pipeline(
    project: Project,
    name: str,
    *,
    definition: str | None = None,
    params: Mapping[str, Any] | None = None,
    actor: str = "",
) -> Pipeline:
    """Create a (stopped) pipeline running ``definition`` (by default the one called ``name``)."""
    if not _NAME.match(name) or name == "new":
        raise InvalidPipeline(
            f"pipeline name {name!r} must be lower-case letters, digits and dashes (max 64)"
        )
    registered = registry.get(definition or name)
    given = dict(params or {})
    registered.build(given)  # refuse bad parameters now, not in a worker
    try:
        with transaction.atomic():
            return Pipeline.objects.create(
                project=project,
                name=name,
                definition=registered.name,
                params=given,
                created_by=actor[:200],
            )
    except IntegrityError:
        raise InvalidPipeline(f"project {project.slug} has a pipeline {name!r} already") from None


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name == "new":
        raise InvalidPipeline(
            f"pipeline name {name!r} must be lower-case letters, digits and dashes (max 64)"
        )


def create_from_spec(project: Project, name: str, spec: Any, *, actor: str = "") -> Pipeline:
    """Create a (stopped) pipeline a user defined by ``spec`` (``continust.pipelines.specs``).

    The spec is checked first (``InvalidSpec`` names the failing path); a table sink's
    table is created, or checked, in the same transaction as the pipeline.
    """
    _check_name(name)
    if Pipeline.objects.filter(project=project, name=name).exists():
        raise InvalidPipeline(f"project {project.slug} has a pipeline {name!r} already")
    checked = specs.check(spec, project, name=name)
    try:
        with transaction.atomic():
            row = Pipeline.objects.create(
                project=project,
                name=name,
                definition=SPEC_DEFINITION,
                params={},
                spec=checked,
                created_by=actor[:200],
            )
            _prepare_sink(row)
            return row
    except IntegrityError:
        raise InvalidPipeline(f"project {project.slug} has a pipeline {name!r} already") from None


def _prepare_sink(row: Pipeline) -> None:
    """Take (and create) a table sink's table now, as the spec's check said it may; a table
    that changed since is refused as the check refuses it (``InvalidSpec`` at its name)."""
    sink = specs.definition_for(row).sink
    if isinstance(sink, TableSink):
        try:
            sink.ensure(row)
        except SinkRefused as err:
            raise specs.InvalidSpec([specs.Problem("/sink/table/name", str(err))]) from None


def update_spec(pipeline: Pipeline, spec: Any, *, reset_progress: bool = False) -> Pipeline:
    """Give a stopped pipeline a new spec.

    Refused (``PipelineBusy``) while it runs or is asked to. It goes on from where it
    stands when the new spec can (as many sources, and the window, if any, able to take
    its committed state back); otherwise ``reset_progress`` starts it over (as ``reset``),
    else the update is refused naming why. Uncommitted checkpoints are dropped: they hold
    the old spec's outputs.
    """
    with transaction.atomic():
        row = _locked(pipeline)
        if row.spec is None:
            raise InvalidPipeline(
                f"pipeline {row.name} runs the definition {row.definition}, not a spec"
            )
        if row.enabled or leases.is_live(row):
            raise PipelineBusy(f"pipeline {row.name} is running; pause it before changing it")
        checked = specs.check(spec, row.project, name=row.name)
        row.spec = checked
        if row.epoch > 0 and not reset_progress:
            why = _cannot_resume(row)
            if why:
                raise PipelineBusy(
                    f"pipeline {row.name} cannot go on from epoch {row.epoch} with this spec "
                    f"({why}); update it with a reset to start over"
                )
        row.save(update_fields=["spec"])
        PipelineCheckpoint.objects.filter(pipeline=row).delete()
        _prepare_sink(row)
    if reset_progress:
        return reset(row)
    row.refresh_from_db()
    return row


def _cannot_resume(row: Pipeline) -> str:
    definition = specs.definition_for(row)
    if len(row.cursor or []) != len(definition.sources):
        return f"it read {len(row.cursor or [])} source(s), the spec has {len(definition.sources)}"
    states = row.state or {}
    for stage in definition.stages:
        if not stage.stateful:
            continue
        if stage.name not in states:
            return f"no committed state for its {stage.name}"
        try:
            stage.restore(states[stage.name])
        except (KeyError, TypeError, ValueError) as err:
            return f"its {stage.name} cannot take the committed state back: {err}"
    return ""


def delete_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """Delete a pipeline no worker holds, with its runs, checkpoints, window results, late
    events and webhook deliveries.

    What it wrote elsewhere (a table, a file) stays: it is the user's. One that waits for a
    worker may go (the worker then finds nothing to run); one that a worker holds is
    refused (``PipelineBusy``). Returns what was deleted.
    """
    with transaction.atomic():
        row = _locked(pipeline)
        if leases.is_live(row):
            raise PipelineBusy(
                f"pipeline {row.name} is running on {row.worker or 'a worker'}; pause it first"
            )
        counts = deletion_plan(row)
        row.delete()
        return counts


def deletion_plan(pipeline: Pipeline) -> dict[str, Any]:
    """What deleting the pipeline removes, and what it leaves where it is."""
    kept = ""
    sink = (pipeline.spec or {}).get("sink") or {}
    if "table" in sink:
        kept = f"table {sink['table']['name']}"
    elif "jsonl" in sink:
        kept = f"file {sink['jsonl']['path']}"
    return {
        "pipeline": pipeline.name,
        "runs": pipeline.runs.count(),
        "checkpoints": PipelineCheckpoint.objects.filter(pipeline=pipeline).count(),
        "window_results": WindowResult.objects.filter(pipeline=pipeline).count(),
        "late_events": LateEvent.objects.filter(pipeline=pipeline).count(),
        "webhook_deliveries": WebhookDelivery.objects.filter(pipeline=pipeline).count(),
        "kept": kept,
    }


def reset_plan(pipeline: Pipeline, spec: Any = None) -> dict[str, Any]:
    """What resetting the pipeline empties in its sink: ``clears``, the table whose every row
    it deletes (only a table the pipeline owns, created or adopted) or the file it empties;
    ``keeps``, a table it leaves alone because the pipeline does not own it.

    With ``spec`` (an update with a reset), the sink is that spec's, checked first: the
    update takes its table (``tables.take``) before the reset empties it.
    """
    if spec is not None:
        spec = specs.check(spec, pipeline.project, name=pipeline.name)
    sink = ((pipeline.spec if spec is None else spec) or {}).get("sink") or {}
    if "table" in sink:
        name = sink["table"]["name"]
        if name not in tables.existing():
            return {"clears": "", "keeps": ""}
        taken = spec is not None and not tables.refusal(name, pipeline.project_id, pipeline.name)
        if taken or tables.owns(pipeline, name):
            return {"clears": f"every row of table {name}", "keeps": ""}
        return {
            "clears": "",
            "keeps": f"table {name}, which is not this pipeline's (continust neither created "
            "nor adopted it for it): its rows stay",
        }
    if "jsonl" in sink:
        return {"clears": f"every line of file {sink['jsonl']['path']}", "keeps": ""}
    return {"clears": "", "keeps": ""}


def _locked(pipeline: Pipeline) -> Pipeline:
    return Pipeline.objects.select_for_update().select_related("project").get(pk=pipeline.pk)


def start(pipeline: Pipeline) -> Pipeline:
    """Ask for the pipeline to run: a worker picks it up from its last commit."""
    with transaction.atomic():
        row = _locked(pipeline)
        if row.enabled and (row.status == PipelineStatus.WAITING or leases.is_live(row)):
            return row
        row.enabled = True
        row.error = ""
        if not leases.is_live(row):
            row.status = PipelineStatus.WAITING
        row.save(update_fields=["enabled", "error", "status"])
        outbox.enqueue(TASK, [row.pk], key=PIPELINES.key(row))
        return row


resume = start


def pause(pipeline: Pipeline) -> Pipeline:
    """Ask for the pipeline to stop; its owner commits what is in flight and lets go."""
    with transaction.atomic():
        row = _locked(pipeline)
        row.enabled = False
        if not leases.is_live(row):
            row.status = PipelineStatus.PAUSED
        row.save(update_fields=["enabled", "status"])
        return row


def reset(pipeline: Pipeline) -> Pipeline:
    """Start over from the beginning of the log: empty the sink, forget the progress."""
    with transaction.atomic():
        row = _locked(pipeline)
        if leases.is_live(row):
            raise PipelineBusy(
                f"pipeline {row.name} is running on {row.worker or 'a worker'}; pause it first"
            )
        # A definition gone or broken: the built-in tables are cleared below all the same.
        with suppress(ContinustError):
            specs.definition_for(row).sink.clear(row)
        WindowResult.objects.filter(pipeline=row).delete()
        LateEvent.objects.filter(pipeline=row).delete()
        PipelineCheckpoint.objects.filter(pipeline=row).delete()
        leases.revoke(
            PIPELINES,
            row.pk,
            epoch=0,
            cursor=[],
            state={},
            events=0,
            late_events=0,
            results=0,
            committed_at=None,
            metrics={},
            error="",
            status=PipelineStatus.WAITING if row.enabled else PipelineStatus.IDLE,
        )
        row.refresh_from_db()
        return row


def resend_stale() -> int:
    """Send again the enabled pipelines nobody holds (``leases.resend_stale`` for pipelines).

    The leases' outbox sweep does this in every worker: a worker killed mid-run
    leaves its lease to lapse; then the pipeline goes to the broker again and the
    next worker resumes it from its checkpoints.
    """
    return leases.resend_stale(PIPELINES)


def latest_windows(pipeline: Pipeline, limit: int = 24) -> list[dict[str, Any]]:
    """The latest ``limit`` windows (by end), each totalled over its keys, oldest first."""
    ends = list(
        WindowResult.objects.filter(pipeline=pipeline)
        .order_by("-end")
        .values_list("end", flat=True)
        .distinct()[:limit]
    )
    if not ends:
        return []
    totals: dict[tuple[int, int], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "sum": 0, "keys": 0, "fires": 0}
    )
    rows = WindowResult.objects.filter(pipeline=pipeline, end__in=ends).values_list(
        "start", "end", "count", "values", "fire"
    )
    for start, end, count, values, fire in rows:
        total = totals[(start, end)]
        total["count"] += count or 0
        value = values.get("sum") if isinstance(values, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            total["sum"] += value
        total["keys"] += 1
        total["fires"] = max(total["fires"], fire)
    return [{"start": s, "end": e, **total} for (s, e), total in sorted(totals.items())]


def open_windows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The windows of the committed state that have not fired yet, each totalled over its
    keys as ``latest_windows`` totals fired ones (their figures so far), oldest first.

    Empty when the definition is not installed or its state cannot be read back (the
    pipeline page says so elsewhere)."""
    states = pipeline.state or {}
    if not states:
        return []
    try:
        definition = specs.definition_for(pipeline)
    except (NotFound, InvalidPipeline):
        return []
    totals: dict[tuple[int, int], dict[str, Any]] = defaultdict(
        lambda: {"count": 0, "sum": 0, "keys": 0}
    )
    for stage in definition.stages:
        if not isinstance(stage, WindowStage) or stage.name not in states:
            continue
        try:
            stage.operator.restore(states[stage.name]["operator"])
        except (KeyError, TypeError, ValueError):
            continue
        for window in stage.operator.open_windows():
            total = totals[(window["start"], window["end"])]
            total["count"] += window.get("count") or 0
            value = window.get("sum")
            if isinstance(value, int | float) and not isinstance(value, bool):
                total["sum"] += value
            total["keys"] += 1
    return [{"start": s, "end": e, **total} for (s, e), total in sorted(totals.items())]


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """What the explorer shows of a pipeline: its state, its stages' figures, its last runs."""
    now = timezone.now()
    registered: registry.Registered | None
    try:
        registered = None if pipeline.spec is not None else registry.get(pipeline.definition)
    except NotFound:
        registered = None
    fresh = (
        pipeline.heartbeat_at is not None
        and leases.is_live(pipeline)
        and (now - pipeline.heartbeat_at).total_seconds() <= FRESH_SECONDS
    )
    metrics = pipeline.metrics or {}
    params = dict(pipeline.params)
    if registered is not None:
        with suppress(InvalidPipeline):  # else shown as stored; starting it says what is wrong
            params = registered.params(pipeline.params)
    if pipeline.spec is not None:
        description = str(pipeline.spec.get("description") or "A pipeline defined by its spec.")
    elif registered is not None:
        description = registered.description
    else:
        description = "(definition not installed)"
    return {
        "description": description,
        "spec": pipeline.spec,
        "params": params,
        "live": leases.is_live(pipeline),
        "fresh": fresh,
        "stages": metrics.get("stages", []),
        "head": metrics.get("head"),
        "gaps": metrics.get("gaps", 0),
        "runs": list(pipeline.runs.order_by("-id")[:5]),
        "pending_checkpoints": PipelineCheckpoint.objects.filter(pipeline=pipeline).count(),
    }

"""What users and workers do with a project's projections: list, run, rebuild, watch.

Every registered projection is kept for every project: ``ensure`` creates the missing
rows, and ``wake_behind`` (an outbox sweep every worker's dispatcher runs) sends the
idle ones whose log has grown to a worker. Running and rebuilding record the wish and
a task message in one transaction (``continust.jobs.outbox``); the worker claims the
projection under its lease (``continust.projections.runner``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.dispatch import receiver

from continust.audit.erasure import subject_erased
from continust.core.errors import ContinustError, NotFound
from continust.jobs import leases, outbox
from continust.models import Project, ProjectionStatus
from continust.models import Projection as ProjectionRow
from continust.projections import builtin, positions, registry, tables
from continust.projections.runner import PROJECTIONS, TASK
from continust.read.project_log import LogPosition

__all__ = [
    "Described",
    "RebuildPlan",
    "activity",
    "describe",
    "ensure",
    "get_projection",
    "rebuild",
    "rebuild_plan",
    "start",
    "wake_behind",
]

log = logging.getLogger(__name__)


def ensure(project: Project) -> list[ProjectionRow]:
    """The project's projection rows, one per registered projection (created when
    missing), by name; rows of projections no longer registered are listed too."""
    have = set(ProjectionRow.objects.filter(project=project).values_list("name", flat=True))
    missing = [name for name in registry.all_names() if name not in have]
    if missing:
        ProjectionRow.objects.bulk_create(
            [ProjectionRow(project=project, name=name) for name in missing],
            ignore_conflicts=True,
        )
    return list(ProjectionRow.objects.filter(project=project).order_by("name"))


def get_projection(project: Project, name: str) -> ProjectionRow:
    """The project's projection called ``name``."""
    ensure(project)
    row = ProjectionRow.objects.select_related("project").filter(project=project, name=name).first()
    if row is None:
        raise NotFound(f"project {project.slug} has no projection {name!r}")
    return row


def _send(row: ProjectionRow) -> None:
    outbox.enqueue(TASK, [row.pk], key=PROJECTIONS.key(row))


def start(row: ProjectionRow) -> ProjectionRow:
    """Have a worker run the projection now (a failed one from where it failed)."""
    registry.get(row.name)
    with transaction.atomic():
        locked = ProjectionRow.objects.select_for_update().get(pk=row.pk)
        if leases.is_live(locked) or locked.status == ProjectionStatus.WAITING:
            return locked
        locked.status = ProjectionStatus.WAITING
        locked.save(update_fields=["status"])
        _send(locked)
        return locked


@dataclass(frozen=True)
class RebuildPlan:
    """What a rebuild replaces: the live tables, their rows and the position they reached."""

    name: str
    tables: list[str]
    rows: int
    position: LogPosition
    events: int
    running: bool  # a rebuild already under way, which this one starts over


def rebuild_plan(row: ProjectionRow) -> RebuildPlan:
    projection = registry.get(row.name)
    live = list(tables.names(row, projection, row.generation).values()) if row.generation else []
    return RebuildPlan(
        row.name,
        live,
        tables.count_rows(row, projection, row.generation),
        LogPosition(row.tx, row.position),
        row.events,
        row.rebuild_generation > 0,
    )


def rebuild(row: ProjectionRow, *, actor: str = "") -> ProjectionRow:
    """Start filling a fresh generation of the projection's tables from position 0; a
    worker swaps it in for the live one once it has caught up. A rebuild under way is
    started over."""
    projection = registry.get(row.name)
    with transaction.atomic():
        locked = ProjectionRow.objects.select_for_update().select_related("project").get(pk=row.pk)
        if locked.rebuild_generation:
            tables.drop(locked, projection, locked.rebuild_generation)
        generation = max(locked.generation, locked.rebuild_generation) + 1
        tables.create(locked, projection, generation)
        locked.rebuild_generation = generation
        locked.rebuild_tx = locked.rebuild_position = locked.rebuild_events = 0
        locked.rebuild_by = actor[:200]
        fields = ["rebuild_generation", "rebuild_tx", "rebuild_position", "rebuild_events"]
        fields.append("rebuild_by")
        if not leases.is_live(locked):
            locked.status = ProjectionStatus.WAITING
            fields.append("status")
            _send(locked)
        locked.save(update_fields=fields)
        return locked


@dataclass(frozen=True)
class Described:
    """What the explorer and ``projection list`` show of a projection."""

    row: ProjectionRow
    description: str
    installed: bool
    live: bool
    position: LogPosition
    lag: int
    rebuild_position: LogPosition | None
    rebuild_lag: int | None


def describe(row: ProjectionRow) -> Described:
    try:
        description = registry.get(row.name).description
        installed = True
    except NotFound:
        description, installed = "(not registered in CONTINUST_PROJECTIONS)", False
    except ContinustError as err:  # registered, but its class cannot run
        description, installed = f"(cannot run: {err})", False
    position = LogPosition(row.tx, row.position)
    rebuilding = row.rebuild_generation > 0
    rebuild_at = LogPosition(row.rebuild_tx, row.rebuild_position) if rebuilding else None
    return Described(
        row,
        description,
        installed,
        leases.is_live(row),
        position,
        positions.lag(row.project_id, position),
        rebuild_at,
        positions.lag(row.project_id, rebuild_at) if rebuild_at is not None else None,
    )


def wake_behind() -> int:
    """Send the idle projections whose log has grown to a worker; return how many.

    An outbox sweep: every worker's dispatcher runs it each round, after creating the
    rows of projections registered since (``ensure``). Failed projections wait for a user.
    """
    try:
        registry.projections()
    except ImproperlyConfigured:
        log.exception("projections: CONTINUST_PROJECTIONS cannot be loaded")
        return 0
    woken = 0
    for project in Project.objects.all():
        for row in ensure(project):
            if row.status != ProjectionStatus.IDLE or row.name not in registry.projections():
                continue
            if not positions.behind(project.pk, LogPosition(row.tx, row.position)):
                continue
            with transaction.atomic():
                if ProjectionRow.objects.filter(pk=row.pk, status=ProjectionStatus.IDLE).update(
                    status=ProjectionStatus.WAITING
                ):
                    _send(row)
                    woken += 1
    return woken


outbox.register_sweep(wake_behind)


@dataclass(frozen=True)
class Activity:
    """The built-in projection's counts for a project page, and how far they lag."""

    days: list[tuple[str, list[tuple[str, int]], int]]  # day, (type, events), total
    lag: int
    position: LogPosition
    built: bool
    committed_at: datetime | None


def activity(project: Project, days: int = 14) -> Activity:
    """Events per type per day of the latest ``days`` days with events, as the built-in
    projection has them (never counted from the log here)."""
    rows = ensure(project)
    row = next(r for r in rows if r.name == builtin.EventCounts.name)
    position = LogPosition(row.tx, row.position)
    lag = positions.lag(project.pk, position)
    if row.generation == 0:
        return Activity([], lag, position, False, None)
    table = tables.names(row, builtin.EventCounts(), row.generation)["daily"]
    try:
        with transaction.atomic():  # a rebuild's swap may drop the table meanwhile
            counts = builtin.daily_counts(table, days)
    except DatabaseError:
        return Activity([], lag, position, False, row.committed_at)
    grouped: dict[str, list[tuple[str, int]]] = {}
    for day, kind, events in counts:
        grouped.setdefault(day, []).append((kind, events))
    return Activity(
        [(day, kinds, sum(n for _, n in kinds)) for day, kinds in grouped.items()],
        lag,
        position,
        True,
        row.committed_at,
    )


@receiver(subject_erased)
def rebuild_after_erasure(sender: object, project: Project, actor: str, **kwargs: object) -> None:
    """Rebuild every projection of a project that erased a data subject: their tables
    were filled with the subject's plain values, a rebuild fills them with ``[erased]``."""
    for row in ProjectionRow.objects.filter(project=project).exclude(generation=0):
        rebuild(row, actor=actor)

"""Whose a table a pipeline's table sink writes is.

continust writes into, and empties on a reset, only a table it created for a project's
pipeline or one the operator allowed a pipeline to adopt (``SinkTable`` records which):

* A table the sink creates is recorded as its project's pipeline's in the transaction
  that creates it.
* An existing table with no record (a table of another application in the same database,
  say) is refused, naming it and the setting that allows it, unless the operator lists it
  in ``CONTINUST_PIPELINE_ADOPT_TABLES``: then the first pipeline that writes it adopts it,
  recorded for that pipeline's project.
* A recorded table is its project's: another project's pipeline is refused, even once the
  pipeline that wrote it is deleted (the table still holds its rows). Within the project a
  pipeline takes it over when no other pipeline of the project names it.
* A record whose table no longer exists is stale: it blocks nothing, and gives way to the
  pipeline that creates the table again.

``refusal`` answers a spec's check (it writes nothing); ``take`` records, in the caller's
transaction, when a pipeline is created or changed and when a run first writes (tables
change between the two); ``owns`` says whether a reset may delete a table's rows.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction

from continust.models import Pipeline, SinkTable
from continust.pipelines import options
from continust.pipelines.sinks import SinkRefused

__all__ = ["existing", "owns", "refusal", "take"]

SETTING = "CONTINUST_PIPELINE_ADOPT_TABLES"


def existing() -> set[str]:
    """The tables and views of the database, as a sink would name them."""
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor, include_views=True))


def _names_it(project_id: int, pipeline: str, table: str) -> bool:
    """Whether the project's pipeline ``pipeline`` exists and its spec writes ``table``."""
    spec: Any = (
        Pipeline.objects.filter(project_id=project_id, name=pipeline)
        .values_list("spec", flat=True)
        .first()
    )
    sink = spec.get("sink") if isinstance(spec, dict) else None
    body = sink.get("table") if isinstance(sink, dict) else None
    return isinstance(body, dict) and body.get("name") == table


def _why(
    record: SinkTable | None, name: str, project_id: int, pipeline: str | None, exists: bool
) -> str:
    if not exists:
        return ""  # the sink creates it; a stale record gives way
    if record is None:
        if name in options.adopt_tables():
            return ""
        return (
            f"table {name} exists and was not created by continust; a pipeline writes only a "
            f"table it creates, or one the operator lets pipelines adopt by listing it in "
            f"{SETTING}"
        )
    if record.project_id != project_id:
        return (
            f"table {name} belongs to another project (it holds the rows of that project's "
            "pipeline, deleted or not); choose another table name"
        )
    if record.pipeline != pipeline and _names_it(project_id, record.pipeline, name):
        return f"table {name} is written by pipeline {record.pipeline}"
    return ""


def refusal(name: str, project_id: int, pipeline: str | None) -> str:
    """Why the project's pipeline ``pipeline`` may not write table ``name`` ('' if it may)."""
    record = SinkTable.objects.filter(name=name).first()
    return _why(record, name, project_id, pipeline, name in existing())


def take(name: str, pipeline: Pipeline, *, create: bool = True) -> bool:
    """Record table ``name`` as the pipeline's, in the caller's transaction, and return
    whether the caller must create it; ``SinkRefused`` naming why it may not write it."""
    record = SinkTable.objects.select_for_update().filter(name=name).first()
    exists = name in existing()
    why = _why(record, name, pipeline.project_id, pipeline.name, exists)
    if why:
        raise SinkRefused(why)
    if not exists and not create:
        raise SinkRefused(f"table {name} does not exist")
    if record is not None and not exists:
        record.delete()  # stale: its table was dropped
        record = None
    if record is None:
        try:
            with transaction.atomic():
                SinkTable.objects.create(
                    name=name,
                    project_id=pipeline.project_id,
                    pipeline=pipeline.name,
                    adopted=exists,
                )
        except IntegrityError:
            raise SinkRefused(f"table {name} was just taken by another pipeline") from None
    elif record.pipeline != pipeline.name:
        record.pipeline = pipeline.name
        record.save(update_fields=["pipeline"])
    return not exists


def owns(pipeline: Pipeline, name: str) -> bool:
    """Whether table ``name`` exists and is the pipeline's (created or adopted by it)."""
    mine = SinkTable.objects.filter(
        name=name, project_id=pipeline.project_id, pipeline=pipeline.name
    ).exists()
    return mine and name in existing()

"""The sinks of pipelines a user defines: a table of the database, a webhook, a JSON Lines
file.

Both write inside the transaction that commits the epoch (``continust.pipelines.runner``),
after the pipeline row was locked and its fencing token checked, so their writes and
the pipeline's progress commit together or not at all:

* **table**: rows go to a table of continust's own database (PostgreSQL, or SQLite on the
  embedded default) in the commit transaction itself. With ``key`` columns a row is
  upserted on them (a window that fires again updates its row; a merged session deletes
  the rows of those it supersedes); without, each item is one inserted row. The table is
  created when missing (``"create": false`` refuses instead) and checked when present: the
  mapped columns exist and the key columns carry a primary key or unique constraint.
  continust's own tables (and any prefixed ``continust_``, ``django_``, ``auth_``, ...)
  are refused, as is a table another pipeline writes, and an existing table continust did
  not create for the project unless the operator lets pipelines adopt it
  (``continust.pipelines.tables`` records whose each table is). A reset deletes rows
  only in a table the pipeline owns.
* **webhook**: each epoch with results becomes one delivery to a webhook of the project
  (``continust.webhooks``), recorded with its task message (the outbox) in the commit
  transaction: exactly one delivery per epoch, then sent as every delivery is, signed
  (Standard Webhooks) and retried with backoff until the receiver answers 2xx. The body is
  ``{"type": "pipeline.results", "data": {"project", "pipeline", "epoch", "results"}}``;
  ``webhook-id`` is the same on every retry, for the receiver to drop a second copy.
* **jsonl**: one line per item (canonical JSON) appended to a file under
  ``CONTINUST_PIPELINE_FILES_DIR/<project>/``. The file's committed length is part of the
  pipeline's committed state; each write first cuts the file back to it (the lines of an
  epoch that never committed go), then appends and syncs, all under the pipeline row's
  lock. The path is relative, its parts plain names (no ``..``, no hidden files), and
  neither the file nor a directory on the way may be a symbolic link.

Late elements (``{"late": true, ...}``) go to the pipeline's late events, as the built-in
sink's do, and are counted: never silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import connection

from continust.core.database import on_postgresql
from continust.log.canonical import canonical_json
from continust.models import LateEvent, Pipeline
from continust.pipelines import options, tables
from continust.pipelines.pointers import MISSING, Pointer
from continust.pipelines.sinks import Sink, SinkRefused, Written, key_text
from continust.pipelines.stages import Batch

if TYPE_CHECKING:
    from continust.models import Project
    from continust.pipelines.specs import Problem

__all__ = [
    "JsonLinesSink",
    "SinkRefused",
    "TableSink",
    "WebhookSink",
    "build",
    "check",
    "file_path",
]

RESERVED_PREFIXES = (
    "continust_",
    "django_",
    "auth_",
    "api_",
    "explorer_",
    "sqlite_",
    "pg_",
    "axes_",
    "celery",
    "kombu",
)
SQL_TYPES = {
    "postgresql": {
        "text": "TEXT",
        "integer": "BIGINT",
        "number": "DOUBLE PRECISION",
        "boolean": "BOOLEAN",
        "json": "JSONB",
    },
    "sqlite": {
        "text": "TEXT",
        "integer": "INTEGER",
        "number": "REAL",
        "boolean": "BOOLEAN",
        "json": "TEXT",
    },
}


def _problem(parts: Sequence[str | int], message: str) -> Problem:
    from continust.pipelines.specs import Problem, pointer_of

    return Problem(pointer_of(["sink", *parts]), message)


def _late_rows(pipeline: Pipeline, batch: Batch) -> tuple[list[Any], int]:
    """The epoch's items without its late elements, which are stored as late events."""
    kept, late = [], []
    for index, item in enumerate(batch.items):
        if isinstance(item, dict) and item.get("late") is True and "ts" in item:
            late.append(
                LateEvent(
                    pipeline=pipeline,
                    epoch=batch.epoch,
                    index=index,
                    key=key_text(item.get("key")),
                    ts=item["ts"],
                    value=item.get("value"),
                )
            )
        else:
            kept.append(item)
    if late:
        LateEvent.objects.bulk_create(late, batch_size=1000, ignore_conflicts=True)
    return kept, len(late)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------ table


def _columns_of(table: str) -> tuple[set[str], list[set[str]]]:
    """The table's column names and the column sets of its unique constraints."""
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
        constraints = connection.introspection.get_constraints(cursor, table)
    unique = [
        set(c["columns"])
        for c in constraints.values()
        if (c.get("unique") or c.get("primary_key")) and c.get("columns")
    ]
    return columns, unique


def _check_table(body: dict[str, Any], project: Project | None) -> list[Problem]:
    name = body["name"]
    problems = []
    if name.startswith(RESERVED_PREFIXES) or name in connection.introspection.django_table_names(
        include_views=True
    ):
        what = (
            "a name of the database's own catalog"
            if name.startswith(("pg_", "sqlite_"))
            else "one of continust's own tables"
        )
        return [_problem(["table", "name"], f"{name} is {what}")]
    key = body.get("key", [])
    for n, column in enumerate(key):
        if column not in body["columns"]:
            problems.append(_problem(["table", "key", n], f"key column {column} is not mapped"))
    if problems or project is None:
        return problems
    why = tables.refusal(name, project.pk, body.get("_pipeline"))
    if why:
        return [_problem(["table", "name"], why)]
    others = Pipeline.objects.filter(spec__isnull=False).select_related("project")
    for other in others:
        sink = (other.spec or {}).get("sink", {})
        theirs = sink.get("table", {}).get("name") if isinstance(sink, dict) else None
        if theirs == name and not _same(other, project, body.get("_pipeline")):
            if other.project_id == project.pk:
                message = f"table {name} is written by pipeline {other.name}"
            else:
                message = f"table {name} is written by a pipeline of another project"
            return [_problem(["table", "name"], message)]
    if name in tables.existing():
        columns, unique = _columns_of(name)
        missing = sorted(set(body["columns"]) - columns)
        if missing:
            problems.append(
                _problem(
                    ["table", "columns"],
                    f"table {name} exists without the column(s) {', '.join(missing)}",
                )
            )
        if key and set(key) not in unique:
            problems.append(
                _problem(
                    ["table", "key"],
                    f"table {name} has no primary key or unique constraint on "
                    f"({', '.join(key)}), which upserts need",
                )
            )
    elif body.get("create") is False:
        problems.append(_problem(["table", "name"], f"table {name} does not exist"))
    return problems


def _same(other: Pipeline, project: Project, name: str | None) -> bool:
    return other.project_id == project.pk and other.name == name


def _value(column: str, kind: str, value: Any) -> Any:
    """The value a column of ``kind`` stores for ``value`` (``MISSING``/None: NULL)."""
    if value is MISSING or value is None:
        return None
    if kind == "json":
        text = canonical_json(_plain(value))
        return text
    if kind == "text":
        return value if isinstance(value, str) else canonical_json(_plain(value))
    if kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):  # number
        return float(value)
    raise SinkRefused(f"column {column} ({kind}) cannot store {canonical_json(_plain(value))}")


class TableSink(Sink):
    """Items into a table of the database, one row each, upserted on the key columns."""

    name = "table"

    def __init__(self, body: dict[str, Any]) -> None:
        self.table = body["name"]
        self.columns = [
            (column, Pointer(c["pointer"]), c["type"]) for column, c in body["columns"].items()
        ]
        self.key = list(body.get("key", []))
        self.create = body.get("create", True)
        self._ready = False

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "table": self.table, "key": self.key}

    def ensure(self, pipeline: Pipeline) -> None:
        """Take the table as the pipeline's (``tables.take``: refused if it is not), create
        it if it is missing (and may be), else check it; once per run, in the caller's
        transaction, so the table and its record commit together."""
        if self._ready:
            return
        if tables.take(self.table, pipeline, create=self.create):
            self.create_table()
        columns, unique = _columns_of(self.table)
        missing = sorted({c for c, _, _ in self.columns} - columns)
        if missing:
            raise SinkRefused(f"table {self.table} has no column(s) {', '.join(missing)}")
        if self.key and set(self.key) not in unique:
            raise SinkRefused(f"table {self.table} has no unique constraint on the key")
        self._ready = True

    def create_table(self) -> None:
        quote = connection.ops.quote_name
        types = SQL_TYPES["postgresql" if on_postgresql() else "sqlite"]
        parts = [f"{quote(column)} {types[kind]}" for column, _, kind in self.columns]
        if self.key:
            parts.append(f"PRIMARY KEY ({', '.join(quote(c) for c in self.key)})")
        with connection.cursor() as cursor:
            # No IF NOT EXISTS: a relation of that name that appeared meanwhile fails the
            # transaction rather than taking the rows.
            cursor.execute(f"CREATE TABLE {quote(self.table)} ({', '.join(parts)})")

    def row(self, item: Any) -> list[Any]:
        return [_value(column, kind, p.resolve(item)) for column, p, kind in self.columns]

    def write(self, pipeline: Pipeline, batch: Batch) -> Written:
        items, late = _late_rows(pipeline, batch)
        self.ensure(pipeline)
        if not self.key:
            rows = [self.row(item) for item in items]
            self._insert(rows)
            return Written(rows=len(rows), late=late)
        positions = [i for i, (column, _, _) in enumerate(self.columns) if column in self.key]
        order = [self.key.index(self.columns[i][0]) for i in positions]
        latest: dict[tuple[Any, ...], list[Any]] = {}
        for item in items:
            for start, end in (isinstance(item, dict) and item.get("supersedes")) or ():
                old = self.row({**item, "start": start, "end": end})
                gone = tuple(old[i] for i in positions)
                latest.pop(gone, None)
                self._delete(gone, order)
            row = self.row(item)
            ident = tuple(row[i] for i in positions)
            if any(v is None for v in ident):
                raise SinkRefused(
                    f"an item of epoch {batch.epoch} has no value for a key column of "
                    f"table {self.table}: {canonical_json(_plain(item))[:300]}"
                )
            latest[ident] = row
        self._insert(list(latest.values()), upsert=True)
        return Written(rows=len(latest), late=late)

    def _insert(self, rows: list[list[Any]], *, upsert: bool = False) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        names = [column for column, _, _ in self.columns]
        json_cast = "::jsonb" if on_postgresql() else ""
        marks = ", ".join(
            f"%s{json_cast}" if kind == "json" else "%s" for _, _, kind in self.columns
        )
        sql = (
            f"INSERT INTO {quote(self.table)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({marks})"
        )
        if upsert:
            rest = [n for n in names if n not in self.key]
            keys = ", ".join(quote(k) for k in self.key)
            if rest:
                sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in rest)
                sql += f" ON CONFLICT ({keys}) DO UPDATE SET {sets}"
            else:
                sql += f" ON CONFLICT ({keys}) DO NOTHING"
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _delete(self, ident: tuple[Any, ...], order: list[int]) -> None:
        quote = connection.ops.quote_name
        names = [self.key[i] for i in order]
        where = " AND ".join(f"{quote(n)} = %s" for n in names)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {quote(self.table)} WHERE {where}", list(ident))

    def clear(self, pipeline: Pipeline) -> None:
        """Delete the table's rows, only when the table is the pipeline's (created or
        adopted by it): never one it was refused, nor another project's."""
        if tables.owns(pipeline, self.table):
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(self.table)}")


# ------------------------------------------------------------------------------ jsonl


def file_path(project_slug: str, relative: str) -> Path:
    """Where a JSON Lines sink of the project writes ``relative``; SinkRefused if outside."""
    base = options.files_dir() / project_slug
    parts = relative.split("/")
    if any(not p or p.startswith(".") or p in {".", ".."} for p in parts) or relative.startswith(
        "/"
    ):
        raise SinkRefused(f"{relative!r} is not a plain relative path")
    path = base.joinpath(*parts)
    if os.path.commonpath([os.path.abspath(base), os.path.abspath(path)]) != os.path.abspath(base):
        raise SinkRefused(f"{relative!r} leads out of the pipeline files directory")
    return path


def _no_links(base: Path, path: Path) -> None:
    """Refuse a symbolic link anywhere from the project's directory down to the file."""
    current = base
    for part in path.relative_to(base).parts:
        current = current / part
        if current.is_symlink():
            raise SinkRefused(f"{current} is a symbolic link; a pipeline does not follow one")


class JsonLinesSink(Sink):
    """Items as JSON Lines appended to a file; its committed length moves with the epoch."""

    name = "jsonl"
    STATE = "sink"

    def __init__(self, body: dict[str, Any]) -> None:
        self.relative = body["path"]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": self.relative}

    def write(self, pipeline: Pipeline, batch: Batch) -> Written:
        items, late = _late_rows(pipeline, batch)
        state = Pipeline.objects.values_list("state", flat=True).get(pk=pipeline.pk) or {}
        mine = state.get(self.STATE) or {}
        path = self.path(pipeline)
        data = b"".join(canonical_json(_plain(item)).encode() + b"\n" for item in items)
        path.parent.mkdir(parents=True, exist_ok=True)
        _no_links(options.files_dir() / pipeline.project.slug, path)
        if mine.get("path", self.relative) == self.relative:
            committed = int(mine.get("bytes", 0))
        else:  # the spec names another file now: go on after what it holds
            committed = path.stat().st_size if path.exists() else 0
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o640)
        try:
            # Lines past the committed length belong to an epoch that never committed.
            os.ftruncate(fd, committed)
            os.lseek(fd, committed, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        batch.states[self.STATE] = {"path": self.relative, "bytes": committed + len(data)}
        return Written(rows=len(items), late=late)

    def path(self, pipeline: Pipeline) -> Path:
        return file_path(pipeline.project.slug, self.relative)

    def clear(self, pipeline: Pipeline) -> None:
        path = self.path(pipeline)
        if path.exists() and not path.is_symlink():
            path.write_bytes(b"")


# ------------------------------------------------------------------------------ webhook


class WebhookSink(Sink):
    """Each epoch's results as one delivery to a webhook of the project."""

    name = "webhook"

    def __init__(self, body: dict[str, Any]) -> None:
        self.webhook_id = int(body["id"])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "webhook": self.webhook_id}

    def write(self, pipeline: Pipeline, batch: Batch) -> Written:
        from continust.jobs import outbox
        from continust.models import Webhook, WebhookDelivery
        from continust.webhooks.delivery import KIND, due_now

        items, late = _late_rows(pipeline, batch)
        if not items:
            return Written(late=late)
        if not Webhook.objects.filter(pk=self.webhook_id, project_id=pipeline.project_id).exists():
            raise SinkRefused(f"project {pipeline.project.slug} has no webhook {self.webhook_id}")
        delivery = WebhookDelivery.objects.create(
            webhook_id=self.webhook_id,
            event=None,
            pipeline=pipeline,
            epoch=batch.epoch,
            results=[_plain(item) for item in items],
            position=str(batch.cursor.get("position", "")),
            next_attempt_at=due_now(),
        )
        outbox.enqueue(KIND.task, [delivery.pk], key=KIND.key(delivery))
        return Written(rows=len(items), late=late)


# ------------------------------------------------------------------------------ both


def check(sink: dict[str, Any], project: Project | None, pipeline: str | None = None) -> list[Any]:
    """What is wrong with where a sink would write (paths of the problems under /sink)."""
    ((kind, body),) = sink.items()
    if kind == "table":
        return _check_table({**body, "_pipeline": pipeline}, project)
    if project is None:
        return []
    if kind == "webhook":
        from continust.models import Webhook

        if not Webhook.objects.filter(pk=body["id"], project=project).exists():
            return [
                _problem(["webhook", "id"], f"project {project.slug} has no webhook {body['id']}")
            ]
        return []
    try:
        path = file_path(project.slug, body["path"])
        _no_links(options.files_dir() / project.slug, path)
    except SinkRefused as err:
        return [_problem(["jsonl", "path"], str(err))]
    if path.is_dir():
        return [_problem(["jsonl", "path"], f"{body['path']} is a directory")]
    for other in Pipeline.objects.filter(project=project, spec__isnull=False):
        theirs = (other.spec or {}).get("sink", {})
        path_of = theirs.get("jsonl", {}).get("path") if isinstance(theirs, dict) else None
        if other.name != pipeline and path_of == body["path"]:
            return [_problem(["jsonl", "path"], f"{path_of} is written by pipeline {other.name}")]
    return []


def build(sink: dict[str, Any], *, pipeline_name: str = "") -> Sink:
    ((kind, body),) = sink.items()
    if kind == "table":
        return TableSink(body)
    if kind == "webhook":
        return WebhookSink(body)
    return JsonLinesSink(body)

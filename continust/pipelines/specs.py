"""Pipelines a user defines: a declarative spec (JSON), validated, then built into the parts
every pipeline runs with (``Definition``), so the same runner, checkpoints, fencing and
backpressure carry it.

A spec::

    {
      "description": "Clicks per page per minute",
      "sources": [
        {"name": "web", "streams": ["web"]},
        {"name": "app", "types": ["app.tap"], "steps": [{"map": {"page": "/payload/screen",
                                                                 "ts": "/ts"}}]}
      ],
      "steps": [
        {"filter": {"pointer": "/payload/page", "op": "exists"}},
        {"window": {"type": "tumbling", "size_ms": 60000, "key": "/payload/page"}}
      ],
      "sink": {"table": {"name": "clicks_per_minute", "key": ["page", "minute"],
                         "columns": {"page": {"pointer": "/key", "type": "text"},
                                     "minute": {"pointer": "/start", "type": "integer"},
                                     "clicks": {"pointer": "/count", "type": "integer"}}}}
    }

Each log event enters as ``{"position", "stream", "type", "ts", "payload"}`` (``ts``:
event time, ms since 1970). A source's own ``steps`` run on its events alone; then the
sources merge in arrival order (each one a watermark input of the window) and the
top-level ``steps`` run: ``filter`` (by event type, or a JSON Pointer and an operator),
``map`` (a new object whose fields are JSON Pointers into the item), at most one
``window`` (``docs/windows.md``'s spec, plus ``key``, ``value`` and ``ts`` pointers),
and after it filters and maps over its results. The sink is a table of the database,
a webhook of the project, or a JSON Lines file (``continust.pipelines.user_sinks``).

``check`` validates a spec against the JSON Schema (``SCHEMA``, with the ``jsonschema``
library) and then its meaning (the streams exist, the window's fields, where the sink
writes); every error names the failing path as a JSON Pointer into the spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema

from continust.log.canonical import canonical_json
from continust.pipelines.options import TABLE_NAME
from continust.pipelines.pointers import MISSING, POINTER_PATTERN, Pointer
from continust.pipelines.registry import Definition, InvalidPipeline
from continust.pipelines.sources import LogEvent, LogSource
from continust.pipelines.stages import Batch, KeyBy, Stage, WindowStage
from continust.pipelines.windows import spec_from_json

if TYPE_CHECKING:
    from continust.models import Pipeline, Project
    from continust.pipelines.sinks import Sink

__all__ = ["SCHEMA", "InvalidSpec", "Problem", "build", "check", "definition_for"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
TABLE_PATTERN = TABLE_NAME.pattern
FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,7}$"
COLUMN_TYPES = ("text", "integer", "number", "boolean", "json")
OPS = ("exists", "missing", "eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix")
WINDOW_FIELDS = {"key", "value", "ts"}

_POINTER = {"type": "string", "pattern": POINTER_PATTERN, "maxLength": 500}
_NAMES = {
    "type": "array",
    "minItems": 1,
    "maxItems": 100,
    "uniqueItems": True,
    "items": {"type": "string", "minLength": 1, "maxLength": 200},
}
_FILTER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "types": _NAMES,
        "pointer": _POINTER,
        "op": {"enum": list(OPS)},
        "value": {},
    },
}
_MAP = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 100,
    "propertyNames": {"pattern": FIELD_PATTERN},
    "additionalProperties": _POINTER,
}
_MS = {"type": "integer"}
_WINDOW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"enum": ["tumbling", "sliding", "session"]},
        "size_ms": _MS,
        "slide_ms": _MS,
        "offset_ms": _MS,
        "gap_ms": _MS,
        "out_of_orderness_ms": _MS,
        "allowed_lateness_ms": _MS,
        "aggregates": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": ["count", "sum", "min", "max", "mean"]},
        },
        "key": {
            "oneOf": [_POINTER, {"type": "array", "minItems": 1, "maxItems": 8, "items": _POINTER}]
        },
        "value": _POINTER,
        "ts": _POINTER,
    },
}


def _step(*kinds: str) -> dict[str, Any]:
    shapes = {"filter": _FILTER, "map": _MAP, "window": _WINDOW}
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {kind: shapes[kind] for kind in kinds},
    }


_COLUMN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["pointer", "type"],
    "properties": {"pointer": _POINTER, "type": {"enum": list(COLUMN_TYPES)}},
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A user-defined pipeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["sources", "sink"],
    "properties": {
        "description": {"type": "string", "maxLength": 500},
        "sources": {
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "streams": _NAMES,
                    "types": _NAMES,
                    "steps": {"type": "array", "maxItems": 50, "items": _step("filter", "map")},
                },
            },
        },
        "steps": {"type": "array", "maxItems": 50, "items": _step("filter", "map", "window")},
        "sink": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "table": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "columns"],
                    "properties": {
                        "name": {"type": "string", "pattern": TABLE_PATTERN},
                        "columns": {
                            "type": "object",
                            "minProperties": 1,
                            "maxProperties": 100,
                            "propertyNames": {"pattern": TABLE_PATTERN},
                            "additionalProperties": _COLUMN,
                        },
                        "key": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 16,
                            "uniqueItems": True,
                            "items": {"type": "string", "pattern": TABLE_PATTERN},
                        },
                        "create": {"type": "boolean"},
                    },
                },
                "webhook": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id"],
                    "properties": {"id": {"type": "integer", "minimum": 1}},
                },
                "jsonl": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path"],
                    "properties": {"path": {"type": "string", "pattern": FILE_PATTERN}},
                },
            },
        },
        "batch_events": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where (a JSON Pointer into it) and what."""

    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class InvalidSpec(InvalidPipeline):
    """A spec that cannot run; ``problems`` names each failing path."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"invalid pipeline spec at {first.path or '/'}: {first.message}{more}")

    @property
    def path(self) -> str:
        return self.problems[0].path


def pointer_of(parts: Sequence[str | int]) -> str:
    """The JSON Pointer of a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _schema_problems(spec: Any) -> list[Problem]:
    errors = sorted(_VALIDATOR.iter_errors(spec), key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for error in errors:
        best = jsonschema.exceptions.best_match([error])
        problems.append(Problem(pointer_of(list(best.absolute_path)), _schema_message(best)))
    return problems


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties" and error.validator_value is False:
        return str(error.message).replace(
            "Additional properties are not allowed", "unknown field(s)"
        )
    if error.validator in {"minProperties", "maxProperties"} and error.schema.get("maxProperties"):
        kinds = ", ".join(sorted(error.schema.get("properties", {})))
        if kinds and error.schema.get("maxProperties") == 1:
            return f"give exactly one of: {kinds}"
    if error.validator == "pattern":
        return f"{error.instance!r} does not match {error.validator_value}"
    return str(error.message)


# ---------------------------------------------------------------------------------- meaning


class _Checker:
    """The checks the schema cannot make; collects problems with their paths."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, parts: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(pointer_of(parts), message))

    def filter(self, where: list[str | int], step: dict[str, Any]) -> None:
        has_types, has_pointer = "types" in step, "pointer" in step
        if has_types == has_pointer:
            self.add(where, "a filter has either types or a pointer (with an op)")
            return
        if has_types:
            for extra in ("op", "value"):
                if extra in step:
                    self.add([*where, extra], "a filter by types takes no op or value")
            return
        op = step.get("op", "exists")
        value = step.get("value", MISSING)
        if op in {"exists", "missing"}:
            if value is not MISSING:
                self.add([*where, "value"], f"op {op} takes no value")
        elif value is MISSING:
            self.add([*where, "value"], f"op {op} needs a value")
        elif op in {"lt", "lte", "gt", "gte"} and _number(value) is None:
            self.add([*where, "value"], f"op {op} compares numbers: the value must be one")
        elif op == "in" and not isinstance(value, list):
            self.add([*where, "value"], "op in needs a list of values")
        elif op == "prefix" and not isinstance(value, str):
            self.add([*where, "value"], "op prefix needs a string")

    def window(self, where: list[str | int], step: dict[str, Any]) -> None:
        try:
            spec_from_json({k: v for k, v in step.items() if k not in WINDOW_FIELDS})
        except ValueError as err:
            self.add(where, f"bad window: {err}")


def _kept(fields: set[str]) -> str:
    return f"a map before it keeps only {', '.join(sorted(fields))}"


def _walk_steps(
    checker: _Checker, where: list[str | int], steps: list[dict[str, Any]], fields: set[str] | None
) -> tuple[set[str] | None, int]:
    """Check each step; return the top-level fields the items have after them (None:
    a log event's) and how many windows there were."""
    windows = 0
    for index, step in enumerate(steps):
        ((kind, body),) = step.items()
        at: list[str | int] = [*where, index, kind]
        if kind == "filter":
            checker.filter(at, body)
            if fields is not None and "types" in body and "type" not in fields:
                checker.add([*at, "types"], f"the items here have no type ({_kept(fields)})")
        elif kind == "map":
            fields = set(body)
        elif kind == "window":
            windows += 1
            if windows > 1:
                checker.add(at, "a pipeline has at most one window")
            checker.window(at, body)
            if fields is not None:
                keys = body.get("key")
                named = [("key", keys)] if isinstance(keys, str) else []
                named += [
                    (f"key/{n}", k) for n, k in enumerate(keys or []) if isinstance(keys, list)
                ]
                if "value" in body:
                    named.append(("value", body["value"]))
                for place, text in named:
                    first = Pointer(text).first
                    if first is not None and first not in fields:
                        checker.add(
                            [*at, *place.split("/")],
                            f"{text} is not in the items here ({_kept(fields)})",
                        )
            ts = body.get("ts", "/ts")
            first = Pointer(ts).first
            if fields is not None and first not in fields:
                checker.add(
                    [*at, "ts"],
                    f"{ts} is not in the items here (a map before the window keeps only "
                    f"{', '.join(sorted(fields))}); map the event time too, or name it in ts",
                )
            fields = {"key", "start", "end", "max_ts", "fire", "supersedes", "count", "sum"}
            fields |= {"min", "max", "mean"}
    return fields, windows


def check(spec: Any, project: Project | None = None, *, name: str | None = None) -> dict[str, Any]:
    """Validate ``spec`` (the schema, then its meaning); return it, or raise ``InvalidSpec``.

    With a project, its streams must exist and the sink must be one the project may
    write (``continust.pipelines.user_sinks``); ``name`` is the pipeline's own (a sink it
    already writes is its own, not another's).
    """
    problems = _schema_problems(spec)
    if problems:
        raise InvalidSpec(problems)
    checker = _Checker()
    names: dict[str, int] = {}
    known: set[str] | None = None
    if project is not None:
        from continust.models import Stream

        known = set(Stream.objects.filter(project=project).values_list("name", flat=True))
    source_fields: list[set[str] | None] = []
    for index, source in enumerate(spec["sources"]):
        label = source.get("name", f"source-{index + 1}")
        if label in names:
            checker.add(["sources", index, "name"], f"source {label!r} is named twice")
        names[label] = index
        for n, stream in enumerate(source.get("streams", [])):
            if known is not None and stream not in known:
                checker.add(
                    ["sources", index, "streams", n],
                    f"project {project.slug if project else ''} has no stream {stream!r}",
                )
        fields, _ = _walk_steps(checker, ["sources", index, "steps"], source.get("steps", []), None)
        source_fields.append(fields)
    merged: set[str] | None = None
    for fields in source_fields:
        if fields is not None:
            merged = fields if merged is None else merged & fields
    if any(f is None for f in source_fields) and merged is not None:
        checker.add(
            ["sources"],
            "some sources map their events and others do not: the merged items would "
            "differ in shape; map every source, or none",
        )
    _walk_steps(checker, ["steps"], spec.get("steps", []), merged)
    from continust.pipelines import user_sinks

    checker.problems.extend(user_sinks.check(spec["sink"], project, name))
    if checker.problems:
        raise InvalidSpec(checker.problems)
    checked: dict[str, Any] = spec
    return checked


# ---------------------------------------------------------------------------------- running


def event_item(event: LogEvent) -> dict[str, Any]:
    """A log event as the steps of a user's pipeline see it."""
    return {
        "position": event.position,
        "stream": event.stream,
        "type": event.type,
        "ts": event.ts,
        "payload": event.payload,
    }


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _compare(op: str, found: Any, value: Any) -> bool:
    if op == "eq":
        return found is not MISSING and canonical_json(found) == canonical_json(value)
    if op == "ne":
        return found is MISSING or canonical_json(found) != canonical_json(value)
    if op == "in":
        return found is not MISSING and canonical_json(found) in {canonical_json(v) for v in value}
    if op == "prefix":
        return isinstance(found, str) and found.startswith(value)
    number = _number(found)
    if number is None:
        return False
    limit = float(value)
    if op == "lt":
        return number < limit
    if op == "lte":
        return number <= limit
    if op == "gt":
        return number > limit
    return number >= limit  # gte


Step = Callable[[Any], Any]  # an item to an item, or None to drop it


def _filter_step(body: dict[str, Any]) -> Step:
    if "types" in body:
        types = frozenset(body["types"])
        return lambda item: item if isinstance(item, dict) and item.get("type") in types else None
    pointer = Pointer(body["pointer"])
    op = body.get("op", "exists")
    if op == "exists":
        return lambda item: item if pointer.resolve(item) is not MISSING else None
    if op == "missing":
        return lambda item: item if pointer.resolve(item) is MISSING else None
    value = body["value"]
    return lambda item: item if _compare(op, pointer.resolve(item), value) else None


def _map_step(body: dict[str, str]) -> Step:
    fields = [(name, Pointer(text)) for name, text in body.items()]

    def mapped(item: Any) -> dict[str, Any]:
        out = {}
        for name, pointer in fields:
            value = pointer.resolve(item)
            out[name] = None if value is MISSING else _plain(value)
        return out

    return mapped


def _plain(value: Any) -> Any:
    """Tuples (window keys of several parts) as lists: every item is plain JSON."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _chain(steps: Sequence[dict[str, Any]]) -> Step | None:
    fns: list[Step] = []
    for step in steps:
        ((kind, body),) = step.items()
        fns.append(_filter_step(body) if kind == "filter" else _map_step(body))
    if not fns:
        return None

    def run(item: Any) -> Any:
        for fn in fns:
            item = fn(item)
            if item is None:
                return None
        return item

    return run


class ReadEvents(Stage):
    """Turn each source's log events into items and run that source's own steps on them.

    Not durable: as cheap to compute again as the log is to read.
    """

    name = "read"
    durable = False

    def __init__(self, chains: Sequence[Step | None]) -> None:
        super().__init__()
        self.chains = list(chains)

    def execute(self, items: list[Any], batch: Batch) -> list[Any]:
        chain = self.chains[batch.source]
        out = []
        for event in items:
            item = event_item(event)
            if chain is not None:
                item = chain(item)
            if item is not None:
                out.append(item)
        return out


class Steps(Stage):
    """Filters and maps in a row; after a window, late elements pass by them untouched."""

    durable = False

    def __init__(self, chain: Step, name: str, *, after_window: bool = False) -> None:
        super().__init__(name)
        self.chain = chain
        self.after_window = after_window

    def execute(self, items: list[Any], batch: Batch) -> list[Any]:
        out = []
        for item in items:
            if self.after_window and isinstance(item, dict) and item.get("late"):
                out.append(item)
                continue
            result = self.chain(_plain(item) if self.after_window else item)
            if result is not None:
                out.append(result)
        return out


def _key_fn(key: Any) -> Callable[[Any], Hashable]:
    if key is None:
        return lambda item: None
    if isinstance(key, str):
        pointer = Pointer(key)
        return lambda item: _scalar(pointer.resolve(item))
    pointers = [Pointer(k) for k in key]
    return lambda item: tuple(_scalar(p.resolve(item)) for p in pointers)


def _scalar(value: Any) -> Hashable:
    if value is MISSING or value is None:
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return canonical_json(_plain(value))


def _window_stages(body: dict[str, Any]) -> list[Stage]:
    spec = spec_from_json({k: v for k, v in body.items() if k not in WINDOW_FIELDS})
    value_pointer = Pointer(body["value"]) if "value" in body else None
    ts_pointer = Pointer(body.get("ts", "/ts"))

    def value(item: Any) -> Any:
        return 1 if value_pointer is None else _number(value_pointer.resolve(item))

    def ts(item: Any) -> int:
        moment = ts_pointer.resolve(item)
        if isinstance(moment, float) and moment.is_integer():
            return int(moment)
        return moment  # type: ignore[no-any-return]

    key = _key_fn(body.get("key"))

    def element_value(item: Any) -> Any:
        moment = ts_pointer.resolve(item)
        if isinstance(moment, bool) or not isinstance(moment, int | float):
            return None  # no event time: skipped, as an item with no value is
        if isinstance(moment, float) and not moment.is_integer():
            return None
        return value(item)

    return [
        KeyBy(key, element_value, ts=ts, name="window-key"),
        WindowStage.from_spec(spec, name="window"),
    ]


def build(spec: dict[str, Any], *, pipeline_name: str = "") -> Definition:
    """The parts that run a (checked) spec."""
    from continust.pipelines import user_sinks

    sources = [
        LogSource(streams=source.get("streams"), types=source.get("types"))
        for source in spec["sources"]
    ]
    stages: list[Stage] = [ReadEvents([_chain(s.get("steps", [])) for s in spec["sources"]])]
    pending: list[dict[str, Any]] = []
    after_window = False

    def flush(index: int) -> None:
        chain = _chain(pending)
        if chain is not None:
            stages.append(Steps(chain, f"steps-{index}", after_window=after_window))
        pending.clear()

    steps = spec.get("steps", [])
    for index, step in enumerate(steps):
        ((kind, body),) = step.items()
        if kind == "window":
            flush(index)
            stages.extend(_window_stages(body))
            after_window = True
        else:
            pending.append(step)
    flush(len(steps))
    sink: Sink = user_sinks.build(spec["sink"], pipeline_name=pipeline_name)
    return Definition(
        sources=sources,
        stages=stages,
        sink=sink,
        batch_events=spec.get("batch_events", 2000),
    )


def definition_for(pipeline: Pipeline) -> Definition:
    """The parts a pipeline runs: its spec's, or its registered definition's."""
    if pipeline.spec is not None:
        return build(check(pipeline.spec), pipeline_name=pipeline.name)
    from continust.pipelines import registry

    return registry.get(pipeline.definition).build(pipeline.params)

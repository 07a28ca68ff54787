"""Continuous pipelines: the log through stages and windows into a sink, exactly once.

A pipeline reads a project's log from a durable cursor (``sources``), moves it in
numbered epochs through stages shaped like the seed's (``name, execute,
checkpoint, recover``; ``stages``) joined by bounded queues (backpressure), and
commits each epoch's results together with its cursor and stage states in one
transaction (``runner``, ``sinks``). Named definitions (``registry``, with two
built in: ``builtin``) are started from Celery (``continust.pipeline_tasks``), the
command line (``run_pipeline``) or the explorer (``control``). ``merge`` joins
async streams in arrival order; ``windows`` holds the event-time windows, pure
Python.

Delivery contract: at least once into the stages, exactly once into the sink
(see ``continust.pipelines.runner``).

The names below are imported when first used, so that importing a pure module
of this package (``continust.pipelines.windows``, ``merge``, ``metrics``) loads
neither Django nor Celery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from continust.pipelines.merge import MergeError, merge
    from continust.pipelines.registry import Definition, InvalidPipeline, register
    from continust.pipelines.sinks import Sink, WindowResultSink, Written
    from continust.pipelines.sources import LogCursor, LogEvent, LogSource
    from continust.pipelines.stages import Batch, Filter, KeyBy, Map, Stage, WindowStage

_HOMES = {
    "Batch": "stages",
    "Definition": "registry",
    "Filter": "stages",
    "InvalidPipeline": "registry",
    "KeyBy": "stages",
    "LogCursor": "sources",
    "LogEvent": "sources",
    "LogSource": "sources",
    "Map": "stages",
    "MergeError": "merge",
    "Sink": "sinks",
    "Stage": "stages",
    "WindowResultSink": "sinks",
    "WindowStage": "stages",
    "Written": "sinks",
    "merge": "merge",
    "register": "registry",
}

__all__ = [
    "Batch",
    "Definition",
    "Filter",
    "InvalidPipeline",
    "KeyBy",
    "LogCursor",
    "LogEvent",
    "LogSource",
    "Map",
    "MergeError",
    "Sink",
    "Stage",
    "WindowResultSink",
    "WindowStage",
    "Written",
    "merge",
    "register",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})

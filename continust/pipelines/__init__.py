"""Continuous pipelines: the log through stages and windows into a sink, exactly once.

A pipeline reads a project's log from a durable cursor (``sources``), moves it in
numbered epochs through stages shaped like the seed's (``name, execute,
checkpoint, recover``; ``stages``) joined by bounded queues (backpressure), and
commits each epoch's results together with its cursor and stage states in one
transaction (``runner``, ``sinks``). Named definitions (``registry``, with two
built in: ``builtin``) are started from Celery (``continust.pipeline_tasks``), the
command line (``run_pipeline``) or the explorer (``control``). ``merge`` joins
async streams in arrival order.

Delivery contract: at least once into the stages, exactly once into the sink
(see ``continust.pipelines.runner``).
"""

from __future__ import annotations

from continust.pipelines.merge import MergeError, merge
from continust.pipelines.registry import Definition, InvalidPipeline, register
from continust.pipelines.sinks import Sink, WindowResultSink, Written
from continust.pipelines.sources import LogCursor, LogEvent, LogSource
from continust.pipelines.stages import Batch, Filter, KeyBy, Map, Stage, WindowStage

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

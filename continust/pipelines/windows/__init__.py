"""Keyed event-time windows with Apache Flink's semantics.

Pure Python: no Django, no Celery. One concept per module:

* ``elements``: the ``(key, ts, value)`` elements in and the plain-dict records out;
* ``eventtime``: durations, watermarks over one or more inputs;
* ``assigners``: ``Tumbling``, ``Sliding``, ``Session``;
* ``aggregates``: ``Stats`` (the fast path), ``Reduce``, the ``Aggregate`` protocol;
* ``spec``: the ``windows --spec`` JSON object;
* ``operator``: ``WindowOperator``, what every kind shares (watermark, lateness,
  emission, snapshots), with one operator per kind in ``tumbling``, ``sliding``
  and ``session``;
* ``run``: ``run_windows``, the driver of the ``windows`` command.

The rules (window bounds, watermarks, allowed lateness, late elements, session
merging, what is emitted when) are in ``docs/windows.md``.
"""

from __future__ import annotations

from continust.pipelines.windows.aggregates import Aggregate, Reduce, Stats
from continust.pipelines.windows.assigners import Session, Sliding, Tumbling
from continust.pipelines.windows.eventtime import Watermarks
from continust.pipelines.windows.operator import WindowOperator
from continust.pipelines.windows.run import run_windows
from continust.pipelines.windows.session import SessionOperator
from continust.pipelines.windows.sliding import SlidingOperator
from continust.pipelines.windows.spec import WindowSpec, spec_from_json
from continust.pipelines.windows.tumbling import TumblingOperator

__all__ = [
    "Aggregate",
    "Reduce",
    "Session",
    "SessionOperator",
    "Sliding",
    "SlidingOperator",
    "Stats",
    "Tumbling",
    "TumblingOperator",
    "Watermarks",
    "WindowOperator",
    "WindowSpec",
    "run_windows",
    "spec_from_json",
]

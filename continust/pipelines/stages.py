"""Stages: the seed's ``name, execute, checkpoint, recover``, applied per epoch.

A pipeline moves the log through its stages in *epochs*: batches of events, each
numbered, each carrying the source cursor it ends at. For every epoch a stage

* ``recover(batch)``: returns the output checkpointed for this epoch by an earlier
  run (restoring its state as of the end of that epoch), or ``None``;
* otherwise ``execute(items, batch)`` (plain or ``async``) computes the output, and
  ``checkpoint(batch, output)`` stores it, with the stage's state, before the output
  goes downstream.

So after a crash a stage takes the epochs it had finished from its checkpoints and
executes only the ones it had not: the pipeline restarts at stage N, not at stage
1. Checkpoints of an epoch are deleted in the transaction that commits the epoch to
the sink. Stages are given each element at least once and must be idempotent; a
stage may set ``durable = False`` to skip checkpoints (cheap, stateless stages:
they are executed again instead).

Outputs are checkpointed as JSON: ``encode``/``decode`` convert when the items
are not plain JSON (``KeyBy`` turns its tuples into lists and back).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from continust.pipelines.sources import LogEvent
from continust.pipelines.windows import (
    Aggregate,
    Session,
    Sliding,
    Stats,
    Tumbling,
    Watermarks,
    WindowOperator,
    WindowSpec,
)

__all__ = [
    "Batch",
    "Checkpoints",
    "Filter",
    "KeyBy",
    "Map",
    "Stage",
    "WindowStage",
]

RESERVED = frozenset({"source", "sink"})


@dataclass(slots=True)
class Batch:
    """One epoch on its way through the stages.

    ``source`` is the index of the source it was read from (a watermark input);
    ``cursor`` that source's cursor after it; ``events`` how many log events it
    carries and ``high`` the highest position among them; ``states`` collects each
    stateful stage's state at the end of this epoch, committed with it. After a
    restart, ``first`` is the index of the first stage that executes the epoch again
    (the stages before it checkpointed it); ``items`` is empty until that stage.
    """

    epoch: int
    source: int
    items: list[Any]
    cursor: dict[str, Any]
    events: int
    high: int
    recovered: bool = False
    first: int = 0
    states: dict[str, Any] = field(default_factory=dict)


class Checkpoints(Protocol):
    """Where stages keep their per-epoch outputs (``continust.pipelines.runner``)."""

    def load(self, stage: str, epoch: int) -> Any | None: ...

    async def save(self, stage: str, epoch: int, data: Any) -> None: ...


class Stage:
    """A step of a pipeline. Subclasses implement ``execute``; stateful ones
    ``snapshot``/``restore`` too.

    ``bind`` is called once per run, before any epoch, with the checkpoint store
    and the number of sources (watermark inputs).
    """

    name = "stage"
    durable = True
    stateful = False

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        if self.name in RESERVED:
            raise ValueError(f"a stage cannot be called {self.name!r}")
        self._checkpoints: Checkpoints | None = None

    def bind(self, checkpoints: Checkpoints, *, inputs: int = 1) -> None:
        self._checkpoints = checkpoints

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": type(self).__name__}

    # The seed's shape ------------------------------------------------------------

    def execute(self, items: list[Any], batch: Batch) -> Any:
        """Return this epoch's output (a list); may be a coroutine function."""
        raise NotImplementedError

    async def checkpoint(self, batch: Batch, output: list[Any]) -> None:
        """Store the epoch's output and this stage's state after it."""
        if not self.durable or self._checkpoints is None:
            return
        data = {"output": self.encode(output), "state": batch.states.get(self.name)}
        await self._checkpoints.save(self.name, batch.epoch, data)

    async def recover(self, batch: Batch) -> list[Any] | None:
        """Return the output checkpointed for this epoch, restoring the state after it."""
        if not self.durable or self._checkpoints is None:
            return None
        data = self._checkpoints.load(self.name, batch.epoch)
        if data is None:
            return None
        if self.stateful:
            self.restore(data["state"])
        return self.decode(data["output"])

    # State and encoding ----------------------------------------------------------

    def snapshot(self) -> Any:
        """The stage's state as JSON (stateful stages)."""
        return None

    def restore(self, state: Any) -> None:
        """Put back a state from ``snapshot``."""

    def encode(self, output: list[Any]) -> Any:
        return output

    def decode(self, data: Any) -> list[Any]:
        return list(data)


class Map(Stage):
    """Apply ``fn`` to each item; an item for which it returns ``None`` is dropped."""

    name = "map"

    def __init__(
        self, fn: Callable[[Any], Any], name: str | None = None, *, durable: bool = True
    ) -> None:
        super().__init__(name)
        self.fn = fn
        self.durable = durable

    def execute(self, items: list[Any], batch: Batch) -> list[Any]:
        fn = self.fn
        return [out for out in map(fn, items) if out is not None]


class Filter(Stage):
    """Keep the items ``predicate`` accepts."""

    name = "filter"

    def __init__(
        self, predicate: Callable[[Any], bool], name: str | None = None, *, durable: bool = False
    ) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.durable = durable

    def execute(self, items: list[Any], batch: Batch) -> list[Any]:
        return [item for item in items if self.predicate(item)]


def _as_key(key: Any) -> Hashable:
    if isinstance(key, list):
        return tuple(_as_key(k) for k in key)
    return key  # type: ignore[no-any-return]


class KeyBy(Stage):
    """Turn log events into ``(key, ts, value)`` elements for a window stage.

    ``value`` returns ``None`` for an event that carries no value: it is skipped
    (counted in ``skipped``, which lives for the run only). Not durable by default:
    its output is as large as its input and computing it again costs less than
    storing it (``bench/bench_pipeline.py``); ``durable=True`` checkpoints it.
    """

    name = "key_by"
    durable = False

    def __init__(
        self,
        key: Callable[[LogEvent], Hashable],
        value: Callable[[LogEvent], Any] | None = None,
        *,
        ts: Callable[[LogEvent], int] | None = None,
        name: str | None = None,
        durable: bool = False,
    ) -> None:
        super().__init__(name)
        self.key = key
        self.value = value
        self.ts = ts
        self.durable = durable
        self.skipped = 0

    def execute(self, items: list[LogEvent], batch: Batch) -> list[tuple[Hashable, int, Any]]:
        key, value, ts = self.key, self.value, self.ts
        out = []
        for event in items:
            v = value(event) if value is not None else 1
            if v is None:
                self.skipped += 1
                continue
            out.append((key(event), ts(event) if ts is not None else event.ts, v))
        return out

    def encode(self, output: list[Any]) -> Any:
        return [[k, t, v] for k, t, v in output]

    def decode(self, data: Any) -> list[Any]:
        return [(_as_key(k), t, v) for k, t, v in data]


class WindowStage(Stage):
    """Keyed event-time windows over ``(key, ts, value)`` elements.

    The operator is ``continust.pipelines.windows``'s. Each source is one
    watermark input and the operator follows their minimum (``docs/windows.md``,
    "Watermarks"), so an input that has delivered nothing yet holds event time
    back. The output is the operator's: window results (a window firing again
    within the allowed lateness comes again with a higher ``fire``) and late
    elements (``{"late": True, ...}``), in emission order.
    """

    name = "window"
    stateful = True

    def __init__(
        self,
        assigner: Tumbling | Sliding | Session,
        *,
        aggregate: Aggregate | Sequence[str] | None = None,
        out_of_orderness_ms: int = 0,
        allowed_lateness_ms: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.assigner = assigner
        self.out_of_orderness_ms = out_of_orderness_ms
        self.operator = WindowOperator(
            assigner, aggregate=aggregate, allowed_lateness_ms=allowed_lateness_ms
        )
        self.watermarks = Watermarks(out_of_orderness_ms)

    @classmethod
    def from_spec(cls, spec: WindowSpec, *, name: str | None = None) -> WindowStage:
        """Build the stage a ``windows --spec`` JSON object describes."""
        return cls(
            spec.assigner,
            aggregate=Stats(tuple(spec.aggregates)),
            out_of_orderness_ms=spec.out_of_orderness_ms,
            allowed_lateness_ms=spec.allowed_lateness_ms,
            name=name,
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "assigner": self.assigner.to_json(),
            "out_of_orderness_ms": self.out_of_orderness_ms,
            "allowed_lateness_ms": self.operator.allowed_lateness_ms,
        }

    def bind(self, checkpoints: Checkpoints, *, inputs: int = 1) -> None:
        super().bind(checkpoints, inputs=inputs)
        self.watermarks = Watermarks(self.out_of_orderness_ms, inputs=inputs)

    def execute(self, items: list[Any], batch: Batch) -> list[dict[str, Any]]:
        return self.operator.process_batch(items, self.watermarks, batch.source)

    @property
    def watermark(self) -> float:
        return self.operator.watermark

    def snapshot(self) -> Any:
        return {"operator": self.operator.snapshot(), "watermarks": self.watermarks.snapshot()}

    def restore(self, state: Any) -> None:
        self.operator.restore(state["operator"])
        self.watermarks.restore(state["watermarks"])

"""What a window computes over its elements: incremental aggregates.

``Stats`` (count, sum, min, max, mean of numbers) is the built-in one, and the
operator runs it on a fast path; any other object with the :class:`Aggregate`
methods works too, ``Reduce`` wrapping an associative two-argument function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["DEFAULT_FIELDS", "STAT_FIELDS", "Aggregate", "Reduce", "Stats"]

STAT_FIELDS = ("count", "sum", "min", "max", "mean")
DEFAULT_FIELDS = ("count", "sum", "min", "max")


@runtime_checkable
class Aggregate(Protocol):
    """An incremental aggregation, like Flink's ``AggregateFunction``.

    ``add`` and ``merge`` may mutate and return their first argument; ``merge``
    must not mutate its second argument. ``result`` returns a mapping merged into
    the output record, or any other value stored under ``"result"``. Accumulators
    must be JSON-serialisable for :meth:`WindowOperator.snapshot` to be.

    ``merge`` combines sessions and, for sliding windows, the panes a window is
    made of (in time order), so the aggregation should be associative and not
    depend on arrival order (Flink requires the same of merging windows).
    """

    def create(self) -> Any: ...

    def add(self, acc: Any, value: Any) -> Any: ...

    def merge(self, acc: Any, other: Any) -> Any: ...

    def result(self, acc: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Stats:
    """count / sum / min / max / mean of numeric values (the built-in fast path)."""

    fields: tuple[str, ...] = DEFAULT_FIELDS

    def __post_init__(self) -> None:
        bad = [f for f in self.fields if f not in STAT_FIELDS]
        if bad or not self.fields:
            raise ValueError(
                "aggregates must be a non-empty list among "
                + ", ".join(STAT_FIELDS)
                + (f"; unknown: {', '.join(map(str, bad))}" if bad else "")
            )

    # The Aggregate protocol, for use outside the operator's fast path.
    def create(self) -> list[Any]:
        return [0, 0, None, None]

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        if acc[0] == 0:
            acc[:] = [1, value, value, value]
        else:
            acc[0] += 1
            acc[1] += value
            if value < acc[2]:
                acc[2] = value
            if value > acc[3]:
                acc[3] = value
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        if other[0] == 0:
            return acc
        if acc[0] == 0:
            acc[:] = other
            return acc
        acc[0] += other[0]
        acc[1] += other[1]
        acc[2] = min(acc[2], other[2])
        acc[3] = max(acc[3], other[3])
        return acc

    def result(self, acc: list[Any]) -> dict[str, Any]:
        values = {"count": acc[0], "sum": acc[1], "min": acc[2], "max": acc[3]}
        if "mean" in self.fields:
            values["mean"] = acc[1] / acc[0] if acc[0] else None
        return {f: values[f] for f in self.fields}


@dataclass(frozen=True, slots=True)
class Reduce:
    """A reducer ``fn(a, b) -> c`` (associative), like Flink's ``ReduceFunction``.

    The result is ``{"result": value}``.
    """

    fn: Callable[[Any, Any], Any]

    def create(self) -> list[Any]:
        return []

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        if acc:
            acc[0] = self.fn(acc[0], value)
        else:
            acc.append(value)
        return acc

    def merge(self, acc: list[Any], other: list[Any]) -> list[Any]:
        if not other:
            return acc
        if not acc:
            acc.append(other[0])
        else:
            acc[0] = self.fn(acc[0], other[0])
        return acc

    def result(self, acc: list[Any]) -> dict[str, Any]:
        return {"result": acc[0] if acc else None}

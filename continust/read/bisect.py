"""Bisect a stream: the first version where a property of the state stopped holding.

A property is a JSON Pointer with the value expected there (any surface), or a Python
expression over ``state`` (the command line only: it runs code, so neither the
explorer nor the API accepts one). The search is ``continust.graph.bisect``'s; this
module reads the states it asks about, one ``state_of`` each, and counts them.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonpointer

from continust.core.errors import BisectRefused, InvalidName
from continust.core.parsing import parse_pointer
from continust.graph import bisect as search
from continust.graph.cache import graph_for
from continust.log import canonical
from continust.log.states import state_of
from continust.log.subjects import Revealer
from continust.models import Stream, Version


class StateProperty(Protocol):
    """Something a state has or has not."""

    def holds(self, state: Any) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class PointerEquals:
    """The value at a JSON Pointer equals an expected JSON value (absent: it does not)."""

    pointer: str
    expected: Any

    def __post_init__(self) -> None:
        parse_pointer(self.pointer)
        try:
            canonical.canonical_json(canonical.storable(self.expected))
        except (TypeError, ValueError, RecursionError) as err:
            raise BisectRefused(f"the expected value is not JSON the log can store: {err}") from err

    def holds(self, state: Any) -> bool:
        try:
            value = jsonpointer.resolve_pointer(state, self.pointer)
        except jsonpointer.JsonPointerException:
            return False
        return canonical.canonical_json(value) == canonical.canonical_json(self.expected)

    def describe(self) -> str:
        return f"{self.pointer or '(the whole state)'} == {canonical.canonical_json(self.expected)}"


_SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "enumerate",
        "float",
        "int",
        "isinstance",
        "len",
        "list",
        "max",
        "min",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    )
}


@dataclass(frozen=True)
class PythonPredicate:
    """A Python expression over ``state`` that is true where the property holds; an
    expression that raises counts as false. For the command line only: it runs code."""

    expression: str

    def __post_init__(self) -> None:
        try:
            compile(self.expression, "<predicate>", "eval")
        except SyntaxError as err:
            raise InvalidName(f"the predicate is not a Python expression: {err.msg}") from err

    def holds(self, state: Any) -> bool:
        code = compile(self.expression, "<predicate>", "eval")
        try:
            return bool(eval(code, {"__builtins__": _SAFE_BUILTINS}, {"state": state}))  # noqa: S307
        except Exception:  # noqa: BLE001  (a property that cannot be read does not hold)
            return False

    def describe(self) -> str:
        return self.expression


@dataclass(frozen=True)
class BisectResult:
    """The first bad version, and what the search read to find it."""

    first_bad: Version
    reads: int
    candidates: int
    tested: tuple[tuple[int, bool], ...]
    property: str

    def as_dict(self) -> dict[str, Any]:
        """The result as the API and the ``bisect`` command print it."""
        first = self.first_bad
        return {
            "first_bad": first.pk,
            "event": str(first.event.id),
            "type": first.event.type,
            "branch": first.branch,
            "states_read": self.reads,
            "candidates": self.candidates,
            "tested": [{"version": v, "good": ok} for v, ok in self.tested],
            "property": self.property,
        }


def bisect_stream(
    stream: Stream, good: Sequence[Version], bad: Version, prop: StateProperty
) -> BisectResult:
    """Find the first version that ``bad`` reaches and no ``good`` reaches where ``prop``
    does not hold. The given ends are read first: each good must hold, bad must not."""
    if not good:
        raise BisectRefused("name at least one good version")
    graph = graph_for(stream)
    reads = 0
    revealer = Revealer(stream.project_id)

    def test(version_id: int) -> bool:
        nonlocal reads
        reads += 1
        return prop.holds(revealer.reveal(state_of(version_id)))

    for version in good:
        if graph.is_ancestor(bad.pk, version.pk):
            raise BisectRefused(
                f"bad v{bad.pk} is an ancestor of good v{version.pk}: nothing lies between"
            )
    for version in good:
        if not test(version.pk):
            raise BisectRefused(
                f"the property {prop.describe()} does not hold at good v{version.pk}; "
                "name a version where it holds"
            )
    if test(bad.pk):
        raise BisectRefused(
            f"the property {prop.describe()} holds at bad v{bad.pk}; name a version where "
            "it does not"
        )
    bisection = search.start(graph, [v.pk for v in good], bad.pk)
    candidates = len(bisection.candidates)
    while (version_id := search.next_to_test(graph, bisection)) is not None:
        search.record(graph, bisection, version_id, test(version_id))
    found = bisection.first_bad or bad.pk
    return BisectResult(
        first_bad=Version.objects.select_related("event").get(pk=found),
        reads=reads,
        candidates=candidates,
        tested=tuple(bisection.tested),
        property=prop.describe(),
    )

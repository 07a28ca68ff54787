"""Bisect a stream: the first version where a property of the state stopped holding.

A property is a JSON Pointer with the value expected there (any surface), or a Python
expression over ``state`` (the command line only: it runs code, so neither the
explorer nor the API accepts one). The search is ``continust.graph.bisect``'s; this
module reads the states it asks about, one ``state_of`` each, and counts them.

A version whose state compaction released cannot be tested: it is skipped, as are the
versions the user names to skip, and the answer may then be a set of versions (the
first bad one is among them) rather than one. The two ends must be readable.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonpointer

from continust.core.errors import BisectRefused, InvalidName, StateReleased
from continust.core.parsing import parse_pointer
from continust.graph import bisect as search
from continust.graph.cache import graph_for
from continust.log import canonical
from continust.log.states import StateMismatch, state_of
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
    """The first bad version (or the versions it lies among, when skipped ones leave it
    open), and what the search read to find it."""

    could_be: tuple[Version, ...]

    @property
    def first_bad(self) -> Version | None:
        """The first bad version; None when skipped versions leave more than one."""
        return self.could_be[0] if len(self.could_be) == 1 else None

    reads: int
    candidates: int
    tested: tuple[tuple[int, bool], ...]
    skipped: tuple[tuple[int, str], ...]
    property: str

    def as_dict(self) -> dict[str, Any]:
        """The result as the API and the ``bisect`` command print it."""
        first = self.first_bad
        return {
            "first_bad": first.pk if first else None,
            "event": str(first.event.id) if first else None,
            "type": first.event.type if first else None,
            "branch": first.branch if first else None,
            "could_be": [v.pk for v in self.could_be],
            "states_read": self.reads,
            "candidates": self.candidates,
            "tested": [{"version": v, "good": ok} for v, ok in self.tested],
            "skipped": [{"version": v, "why": why} for v, why in self.skipped],
            "property": self.property,
        }

    def summary(self) -> str:
        """One line for people: the version found, or the versions it lies among."""
        read = f"{self.reads} states read for {self.candidates} candidates"
        first = self.first_bad
        if first is not None:
            return (
                f"v{first.pk} is the first bad version ({first.event.type} on {first.branch}, "
                f"event {first.event.id}): {self.property} broke there; {read}"
            )
        shown = [f"v{v.pk}" for v in self.could_be[:SHOWN]]
        if len(self.could_be) > SHOWN:
            shown.append(f"and {len(self.could_be) - SHOWN} more")
        return (
            f"the first bad version is one of {', '.join(shown)}: {self.property} broke "
            f"among them, and {len(self.skipped)} could not be tested; {read}"
        )


SHOWN = 8
RELEASED = "state released by compaction"
ASKED = "skipped as asked"


def bisect_stream(
    stream: Stream,
    good: Sequence[Version],
    bad: Version,
    prop: StateProperty,
    skip: Sequence[Version] = (),
) -> BisectResult:
    """Find the first version that ``bad`` reaches and no ``good`` reaches where ``prop``
    does not hold. The given ends are read first: each good must hold, bad must not.
    Versions in ``skip``, and those whose state was released, are not tested."""
    if not good:
        raise BisectRefused("name at least one good version")
    graph = graph_for(stream)
    reads = 0
    revealer = Revealer(stream.project_id)
    unwanted = {v.pk for v in skip}
    for version in (*good, bad):
        if version.pk in unwanted:
            raise BisectRefused(f"v{version.pk} is an end of the bisection: it cannot be skipped")

    def test(version_id: int) -> bool:
        """Whether the property holds at a version; StateReleased when its state is gone
        (a StateMismatch, a broken log, is not a released state: it propagates)."""
        nonlocal reads
        state = state_of(version_id)
        reads += 1
        return prop.holds(revealer.reveal(state))

    def test_end(version_id: int) -> bool:
        try:
            return test(version_id)
        except StateMismatch:
            raise
        except StateReleased as err:
            raise BisectRefused(
                f"the state of v{version_id} was released by compaction, so it cannot be "
                "an end of the bisection; name a version whose state is kept"
            ) from err

    for version in good:
        if graph.is_ancestor(bad.pk, version.pk):
            raise BisectRefused(
                f"bad v{bad.pk} is an ancestor of good v{version.pk}: nothing lies between"
            )
    for version in good:
        if not test_end(version.pk):
            raise BisectRefused(
                f"the property {prop.describe()} does not hold at good v{version.pk}; "
                "name a version where it holds"
            )
    if test_end(bad.pk):
        raise BisectRefused(
            f"the property {prop.describe()} holds at bad v{bad.pk}; name a version where "
            "it does not"
        )
    bisection = search.start(graph, [v.pk for v in good], bad.pk)
    candidates = len(bisection.candidates)
    why: dict[int, str] = {}
    for asked in sorted(unwanted & bisection.candidates):
        search.skip(bisection, asked)
        why[asked] = ASKED
    while (version_id := search.next_to_test(graph, bisection)) is not None:
        try:
            holds = test(version_id)
        except StateMismatch:
            raise
        except StateReleased:
            search.skip(bisection, version_id)
            why[version_id] = RELEASED
            continue
        search.record(graph, bisection, version_id, holds)
    found = Version.objects.select_related("event").in_bulk(bisection.could_be)
    return BisectResult(
        could_be=tuple(found[pk] for pk in sorted(found)),
        reads=reads,
        candidates=candidates,
        tested=tuple(bisection.tested),
        skipped=tuple((v, why[v]) for v in bisection.skipped),
        property=prop.describe(),
    )

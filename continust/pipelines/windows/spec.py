"""The ``windows --spec`` JSON object, read into a :class:`WindowSpec`.

``{"type": "tumbling", "size_ms", "offset_ms"}``,
``{"type": "sliding", "size_ms", "slide_ms", "offset_ms"}`` or
``{"type": "session", "gap_ms"}``, each with optional ``out_of_orderness_ms``,
``allowed_lateness_ms`` and ``aggregates``. Anything else is refused with a
message that says what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from continust.pipelines.windows.aggregates import DEFAULT_FIELDS, STAT_FIELDS, Stats
from continust.pipelines.windows.assigners import Assigner, Session, Sliding, Tumbling
from continust.pipelines.windows.eventtime import check_millis

__all__ = ["WindowSpec", "spec_from_json"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """What ``windows --spec`` describes: an assigner and the time tolerances."""

    assigner: Assigner
    _: KW_ONLY
    out_of_orderness_ms: int = 0
    allowed_lateness_ms: int = 0
    aggregates: tuple[str, ...] = DEFAULT_FIELDS

    def __post_init__(self) -> None:
        check_millis("out_of_orderness_ms", self.out_of_orderness_ms)
        check_millis("allowed_lateness_ms", self.allowed_lateness_ms)
        if self.out_of_orderness_ms < 0:
            raise ValueError("out_of_orderness_ms must be >= 0")
        if self.allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must be >= 0")
        Stats(tuple(self.aggregates))


_SPEC_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional)
    "tumbling": (("size_ms",), ("offset_ms",)),
    "sliding": (("size_ms", "slide_ms"), ("offset_ms",)),
    "session": (("gap_ms",), ()),
}
_COMMON_FIELDS = ("type", "out_of_orderness_ms", "allowed_lateness_ms", "aggregates")


def _spec_int(spec: Mapping[str, Any], name: str, default: int | None = None) -> int:
    if name not in spec:
        if default is None:
            raise ValueError(f"{spec['type']} window spec needs {name!r}")
        return default
    value = spec[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_millis(name, value)


def spec_from_json(spec: Mapping[str, Any]) -> WindowSpec:
    """Build a :class:`WindowSpec` from the ``windows --spec`` JSON object.

    ``{"type": "tumbling", "size_ms", "offset_ms"}``,
    ``{"type": "sliding", "size_ms", "slide_ms", "offset_ms"}`` or
    ``{"type": "session", "gap_ms"}``, each with optional ``out_of_orderness_ms``,
    ``allowed_lateness_ms`` (0 by default) and ``aggregates`` (a list drawn from
    count, sum, min, max, mean). Raises ValueError with a readable message.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"window spec must be a JSON object, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in _SPEC_FIELDS:
        raise ValueError(
            f"window spec type must be one of tumbling, sliding, session; got {kind!r}"
        )
    required, optional = _SPEC_FIELDS[kind]
    unknown = sorted(set(spec) - set(required) - set(optional) - set(_COMMON_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) in {kind} window spec: {', '.join(unknown)}")
    assigner: Assigner
    if kind == "tumbling":
        assigner = Tumbling(_spec_int(spec, "size_ms"), offset_ms=_spec_int(spec, "offset_ms", 0))
    elif kind == "sliding":
        assigner = Sliding(
            _spec_int(spec, "size_ms"),
            _spec_int(spec, "slide_ms"),
            offset_ms=_spec_int(spec, "offset_ms", 0),
        )
    else:
        assigner = Session(_spec_int(spec, "gap_ms"))
    aggregates = spec.get("aggregates", DEFAULT_FIELDS)
    if isinstance(aggregates, str) or not isinstance(aggregates, Sequence):
        raise ValueError("aggregates must be a list of names among " + ", ".join(STAT_FIELDS))
    return WindowSpec(
        assigner,
        out_of_orderness_ms=_spec_int(spec, "out_of_orderness_ms", 0),
        allowed_lateness_ms=_spec_int(spec, "allowed_lateness_ms", 0),
        aggregates=tuple(aggregates),
    )

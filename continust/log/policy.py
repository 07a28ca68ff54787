"""Retention policies: what a stream remembers.

- **eternal** (the default): every event and every state is kept.
- **selective**: every event is kept; a state is stored every ``snapshot_every``
  generations, at roots, merges and branch heads, at the merge bases of the heads,
  and at the versions reviews and replays point at. Any other version's state is
  recomputed from the nearest stored one when it is read (``continust.log.states``).
- **ephemeral**: beyond a horizon (outside the newest ``horizon_versions`` versions
  and older than ``horizon_age``; one of the two suffices to set it), compaction
  releases event payloads and states. Version rows, parent links and every hash
  stay, so the graph keeps its shape and still reaches the root; each released
  chain is stood for by one ``ReleasedRun``. What reviews, replays and branch heads
  point at is never released.

A policy only says what may go; ``continust.retention.compaction`` does the work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from continust.core.errors import InvalidEvent, InvalidName
from continust.core.parsing import parse_number
from continust.models import Retention, Stream

MIN_EVERY = 2
MAX_EVERY = 1_000_000
MAX_HORIZON_VERSIONS = 2**31 - 1
MAX_AGE = timedelta(weeks=5200)  # a century: the clock arithmetic stays in range
_AGE = re.compile(r"^\s*([0-9]+)\s*(s|m|h|d|w)?\s*$")  # ASCII digits, as continust.core.parsing
_DIGITS = re.compile(r"[0-9]+")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Policy:
    """A stream's retention policy."""

    kind: str = Retention.ETERNAL
    snapshot_every: int = 100
    horizon_versions: int | None = None
    horizon_age: timedelta | None = None

    @property
    def eternal(self) -> bool:
        return self.kind == Retention.ETERNAL

    @property
    def selective(self) -> bool:
        return self.kind == Retention.SELECTIVE

    @property
    def ephemeral(self) -> bool:
        return self.kind == Retention.EPHEMERAL

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.selective:
            data["snapshot_every"] = self.snapshot_every
        if self.ephemeral:
            data["horizon_versions"] = self.horizon_versions
            data["horizon_age"] = format_age(self.horizon_age)
        return data

    def describe(self) -> str:
        """Say the policy in words, for pages and the command line."""
        if self.selective:
            return f"selective: a snapshot every {self.snapshot_every} versions"
        if self.ephemeral:
            parts = []
            if self.horizon_versions is not None:
                parts.append(f"the newest {self.horizon_versions} versions")
            if self.horizon_age is not None:
                parts.append(f"versions younger than {format_age(self.horizon_age)}")
            return "ephemeral: keeps " + " and ".join(parts)
        return "eternal: every event and state is kept"

    def stores_at_append(self, generation: int, *, last: bool, merge: bool) -> bool:
        """Tell whether an append stores the new version's state (selective skips most)."""
        if not self.selective:
            return True
        return last or merge or generation % self.snapshot_every == 0


def parse_age(text: str | int | timedelta | None) -> timedelta | None:
    """Read an age such as ``90d``, ``12h``, ``30m`` or a number of seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, timedelta):
        age = text
    elif isinstance(text, int):
        if text <= 0:
            raise InvalidEvent("a horizon age must be positive")
        if text > MAX_AGE.total_seconds():
            raise InvalidEvent("a horizon age is at most 5200w (a century)")
        age = timedelta(seconds=text)
    else:
        match = _AGE.match(str(text))
        if match is None:
            raise InvalidEvent(f"{text!r} is not an age: write a number with s, m, h, d or w")
        seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
        if seconds > MAX_AGE.total_seconds():
            raise InvalidEvent("a horizon age is at most 5200w (a century)")
        age = timedelta(seconds=seconds)
    if age <= timedelta(0):
        raise InvalidEvent("a horizon age must be positive")
    if age > MAX_AGE:
        raise InvalidEvent("a horizon age is at most 5200w (a century)")
    return age


def format_age(age: timedelta | None) -> str | None:
    """Write an age as ``parse_age`` reads it, in the largest whole unit."""
    if age is None:
        return None
    seconds = int(age.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def make_policy(
    kind: str,
    *,
    snapshot_every: int | str | None = None,
    horizon_versions: int | str | None = None,
    horizon_age: str | int | timedelta | None = None,
) -> Policy:
    """Check what a user asked for and return the policy, or say what is wrong."""
    if kind not in Retention.values:
        raise InvalidEvent(
            f"{kind!r} is not a retention policy: use " + ", ".join(Retention.values)
        )
    if kind == Retention.SELECTIVE:
        every = _whole(
            snapshot_every if snapshot_every not in (None, "") else 100,
            "snapshot_every",
            MIN_EVERY,
            MAX_EVERY,
        )
        return Policy(kind, snapshot_every=every)
    if kind == Retention.EPHEMERAL:
        versions = (
            None
            if horizon_versions in (None, "")
            else _whole(horizon_versions, "horizon_versions", 1, MAX_HORIZON_VERSIONS)
        )
        age = parse_age(horizon_age)
        if versions is None and age is None:
            raise InvalidEvent(
                "an ephemeral policy needs a horizon: a number of versions, an age, or both"
            )
        return Policy(kind, horizon_versions=versions, horizon_age=age)
    return Policy(kind)


# The settings each kind of policy reads.
SETTINGS: Final[dict[str, tuple[str, ...]]] = {
    Retention.ETERNAL: (),
    Retention.SELECTIVE: ("snapshot_every",),
    Retention.EPHEMERAL: ("horizon_versions", "horizon_age"),
}


def unused_settings(kind: str, given: Iterable[str]) -> list[str]:
    """Name, in order, the settings given that a kind of policy does not read: a mistake
    worth naming where a caller sets them explicitly (``make_policy`` ignores them)."""
    reads = SETTINGS.get(kind)
    return [] if reads is None else sorted(set(given) - set(reads))


def _whole(value: Any, name: str, low: int, high: int) -> int:
    """Read a whole number between ``low`` and ``high``; a number too large to store is
    out of that range too, not "not a whole number"."""
    if isinstance(value, bool):
        raise InvalidEvent(f"{name} must be a whole number")
    if isinstance(value, int):
        number = value
    else:
        try:
            number = parse_number(str(value), name)
        except InvalidName:
            # Digits too many to store are out of range too; anything else is no number.
            if _DIGITS.fullmatch(str(value).strip()):
                raise InvalidEvent(f"{name} must be between {low} and {high}") from None
            raise InvalidEvent(f"{name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise InvalidEvent(f"{name} must be between {low} and {high}")
    return number


def policy_of(stream: Stream) -> Policy:
    """Return the stream's current policy."""
    return Policy(
        stream.retention,
        snapshot_every=stream.snapshot_every,
        horizon_versions=stream.horizon_versions,
        horizon_age=stream.horizon_age,
    )

"""Canonical JSON and the hashes built on it: states, events and versions.

The canonical form sorts keys, drops insignificant white space and refuses NaN
and infinities, so equal documents always hash alike, whichever database stored
them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


# One encoder for every canonical text: ``json.dumps`` with these options would build a
# new one per call, which costs as much as encoding a small document.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


_quote = json.encoder.encode_basestring  # a JSON string as the canonical encoder writes it


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value``."""
    return _ENCODER.encode(value)


# PostgreSQL keeps JSON numbers as numerics and gives a whole float of 1e16 or more back
# as an integer, which would then be written (and hashed) differently. A numeric has no
# negative zero either: jsonb gives -0.0 back as 0.0.
_WHOLE_FLOAT_LIMIT = 1e16


def storable(value: Any) -> Any:
    """Return ``value`` as every database gives it back: large whole floats become ints,
    a negative zero becomes 0.0.

    Refuse (ValueError) text that no database stores: NUL characters and lone surrogates.
    The value is copied only where something changes.
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text is not valid Unicode: {err.reason}") from None
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinities are not JSON")
        if value.is_integer() and abs(value) >= _WHOLE_FLOAT_LIMIT:
            return int(value)
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return 0.0
        return value
    if isinstance(value, dict):
        changed = {}
        for key, item in value.items():
            storable(key)
            new = storable(item)
            if new is not item:
                changed[key] = new
        return {**value, **changed} if changed else value
    if isinstance(value, list):
        # A plain loop, not a comprehension: one frame a level lets deep documents through.
        items = None
        for index, item in enumerate(value):
            new = storable(item)
            if new is not item:
                items = items if items is not None else list(value)
                items[index] = new
        return items if items is not None else value
    return value


# What the canonical text of a value ``storable`` would change or refuse always contains:
# a negative zero is written "-0.0", a whole float of 1e16 or more in exponent form ("e+"),
# a NUL as "\\u0000"; a lone surrogate fails to encode. Text without any of them needs no
# walk of the value.
_MAYBE_UNSTORABLE = ("-0.0", "e+", "\\u0000")


def storable_text(value: Any) -> str | None:
    """Return the canonical text of ``value`` when ``storable`` would leave the value as it
    is, from one encoding; None when only a walk of the value can say (or it is no JSON)."""
    try:
        text = canonical_json(value)
        if any(mark in text for mark in _MAYBE_UNSTORABLE):
            return None
        text.encode("utf-8")
    except (TypeError, ValueError):  # not JSON, NaN, a lone surrogate: the walk says which
        return None
    return text


def storable_with_text(value: Any) -> tuple[Any, str]:
    """Return ``storable(value)`` and its canonical text, encoding the value once and
    walking it only when the text shows something ``storable`` might change or refuse."""
    text = storable_text(value)
    if text is not None:
        return value, text
    kept = storable(value)
    return kept, canonical_json(kept)


def sha256_text(text: str) -> str:
    """Return the SHA-256 of a text's UTF-8 bytes, in hex: every hash of the log."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_sha256 = sha256_text


def state_hash(state: Any) -> str:
    """Return the content address of a state document."""
    return _sha256(canonical_json(state))


def hashed_state(state: Any) -> tuple[str, str]:
    """Return a state's content address and the canonical text it was computed from."""
    text = canonical_json(state)
    return _sha256(text), text


def timestamp_text(moment: datetime) -> str:
    """Return a timestamp as hashed and exported: UTC, microseconds, ISO 8601."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_body(
    *,
    id: str,
    seq: int,
    type: str,
    timestamp: datetime,
    payload: Any,
    causation: str | None,
    correlation: str | None,
    actor: str,
) -> dict[str, Any]:
    """Return the fields of an event that its hash covers."""
    return {
        "id": id,
        "seq": seq,
        "type": type,
        "timestamp": timestamp_text(timestamp),
        "payload": payload,
        "causation": causation,
        "correlation": correlation,
        "actor": actor,
    }


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """Return the chain hash of an event: its canonical body joined to the previous hash."""
    return _sha256(prev_hash + canonical_json(body))


def version_digest(
    *, event_hash: str, parents: Sequence[str], state: str, reducer: str, reducer_version: int
) -> str:
    """Return a version's digest, which covers its event, its parents' digests and its state."""
    parents = list(parents)
    if type(event_hash) is type(state) is type(reducer) is str and all(
        type(p) is str for p in parents
    ):
        # The canonical text of the object below, written directly: keys in sorted order,
        # strings quoted by the same function the canonical encoder uses.
        return _sha256(
            f'{{"event":{_quote(event_hash)},"parents":[{",".join(map(_quote, parents))}],'
            f'"reducer":{_quote(f"{reducer}@{reducer_version}")},"state":{_quote(state)}}}'
        )
    return _sha256(
        canonical_json(
            {
                "event": event_hash,
                "parents": parents,
                "state": state,
                "reducer": f"{reducer}@{reducer_version}",
            }
        )
    )


def from_cursor(value: Any) -> Any:
    """A JSON column as a raw cursor gives it back: parsed by psycopg, text from SQLite."""
    return json.loads(value) if isinstance(value, str) else value


def merkle_root(hashes: Sequence[str]) -> str:
    """Return the Merkle root over hex SHA-256 hashes, in order.

    Pairs are hashed as ``sha256(left || right)`` over the raw bytes; an odd last node
    is carried up unchanged. One leaf is its own root; no leaves give ``GENESIS``.
    """
    level = [bytes.fromhex(h) for h in hashes]
    if not level:
        return GENESIS
    while len(level) > 1:
        paired = [
            hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def move_hash(
    prev_hash: str,
    *,
    branch: str,
    old_head: str | None,
    new_head: str,
    reason: str,
    actor: str,
    at: datetime,
) -> str:
    """Return the chain hash of a branch move: its canonical record joined to the hash of
    the branch's previous move. Heads are named by their versions' digests."""
    return _sha256(
        prev_hash
        + canonical_json(
            {
                "branch": branch,
                "from": old_head,
                "to": new_head,
                "reason": reason,
                "actor": actor,
                "at": timestamp_text(at),
            }
        )
    )


def event_hash_of_text(
    prev_hash: str,
    *,
    id: str,
    seq: int,
    type: str,
    timestamp: datetime,
    payload_text: str,
    causation: str | None,
    correlation: str | None,
    actor: str,
) -> str:
    """Return ``event_hash`` of an event whose payload is already canonical text.

    The body is spelled out in canonical key order around the given payload text, with
    each string encoded as ``canonical_json`` encodes it, so the write path encodes each
    payload once for both the hash and the insert.
    """
    return _sha256(
        prev_hash
        + '{"actor":'
        + _string(actor)
        + ',"causation":'
        + (_string(causation) if causation is not None else "null")
        + ',"correlation":'
        + (_string(correlation) if correlation is not None else "null")
        + ',"id":'
        + _string(id)
        + ',"payload":'
        + payload_text
        + ',"seq":'
        + str(int(seq))
        + ',"timestamp":'
        + _string(timestamp_text(timestamp))
        + ',"type":'
        + _string(type)
        + "}"
    )


# How canonical_json (ensure_ascii=False) writes a string.
_string = json.encoder.encode_basestring

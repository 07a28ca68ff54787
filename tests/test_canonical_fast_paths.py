"""The write paths' shortcuts give exactly what the canonical form gives.

Folded states are checked and hashed from one canonical text: the same verdict and the
same hash as ``storable_state`` followed by ``state_hash``, for every value. A version's
digest is written without building its object: the same text as ``canonical_json`` of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continust.core.errors import ReducerRejected
from continust.log import canonical
from continust.log.folding import hashed_storable_state, storable_state

TRICKY_FLOATS = st.sampled_from(
    [-0.0, 0.0, 1e16, -1e16, 1.5e16, 9999999999999998.0, 1e-320, 5e-324, 2.0**53, 1e308, -2.5]
)
TRICKY_TEXT = st.sampled_from(["-0.0", "1e+16", "\\u0000", "\x00", "\ud800", "é", "e+", ""])
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | TRICKY_FLOATS
    | st.text()
    | TRICKY_TEXT
)
DOCUMENTS = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5) | TRICKY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


def checked_then_hashed(state: Any) -> tuple[str, str] | type[Exception]:
    """What the two steps give: the hash and the text, or the error they raise."""
    try:
        storable_state(state, reducer="r", reducer_version=1, event_id="e")
        return canonical.state_hash(state), canonical.canonical_json(state)
    except Exception as err:  # the exact class is compared below
        return type(err)


def in_one_step(state: Any) -> tuple[str, str] | type[Exception]:
    try:
        return hashed_storable_state(state, reducer="r", reducer_version=1, event_id="e")
    except Exception as err:
        return type(err)


@given(st.dictionaries(st.text(max_size=5) | TRICKY_TEXT, DOCUMENTS, max_size=5))
def test_one_text_gives_what_the_walk_and_the_hash_give(state: dict[str, Any]) -> None:
    assert in_one_step(state) == checked_then_hashed(state)


@pytest.mark.parametrize(
    "state",
    [
        {"v": -0.0},
        {"v": [1, {"w": -0.0}]},
        {"v": 1e16},
        {"v": -3e20},
        {"v": "a\x00b"},
        {"a\x00": 1},
        {"v": "\ud800"},
        {"v": float("nan")},
        {"v": float("inf")},
    ],
)
def test_it_refuses_what_the_database_would_give_back_changed(state: dict[str, Any]) -> None:
    with pytest.raises(ReducerRejected):
        hashed_storable_state(state, reducer="r", reducer_version=1, event_id="e")


def test_text_that_only_looks_unstorable_is_hashed_as_it_is() -> None:
    state = {"memo": "-0.0 and 1e+16 and \\u0000", "n": 1.5e15, "z": 0.0}
    text = canonical.canonical_json(state)
    assert hashed_storable_state(state, reducer="r", reducer_version=1, event_id="e") == (
        canonical.state_hash(state),
        text,
    )


@given(
    st.text() | TRICKY_TEXT,
    st.lists(st.text(max_size=70) | TRICKY_TEXT, max_size=3),
    st.text(max_size=70) | TRICKY_TEXT,
    st.text(max_size=20) | TRICKY_TEXT,
    st.integers() | st.booleans(),
)
def test_a_version_digest_hashes_the_canonical_text_of_its_object(
    event: str, parents: list[str], state: str, reducer: str, version: int
) -> None:
    def canonical_digest() -> str | type[Exception]:
        body = {
            "event": event,
            "parents": parents,
            "state": state,
            "reducer": f"{reducer}@{version}",
        }
        try:
            return canonical.sha256_text(canonical.canonical_json(body))
        except Exception as err:
            return type(err)

    try:
        written: str | type[Exception] = canonical.version_digest(
            event_hash=event, parents=parents, state=state, reducer=reducer, reducer_version=version
        )
    except Exception as err:
        written = type(err)
    assert written == canonical_digest()


def walked_then_encoded(payload: Any) -> tuple[Any, str] | type[Exception]:
    try:
        kept = canonical.storable(payload)
        return kept, canonical.canonical_json(kept)
    except Exception as err:
        return type(err)


def encoded_once(payload: Any) -> tuple[Any, str] | type[Exception]:
    try:
        return canonical.storable_with_text(payload)
    except Exception as err:
        return type(err)


@given(st.dictionaries(st.text(max_size=5) | TRICKY_TEXT, DOCUMENTS, max_size=5))
def test_a_payload_encoded_once_is_what_the_walk_then_the_encoding_give(
    payload: dict[str, Any],
) -> None:
    """``validate_event`` takes the payload's storable form and size from one encoding."""
    once, walked = encoded_once(payload), walked_then_encoded(payload)
    assert once == walked
    if isinstance(once, tuple):
        # Same text, and the same object where nothing changed (a copy only when needed).
        assert (once[0] is payload) == (walked[0] is payload)  # type: ignore[index]

"""The write path's event hash, built around the payload's canonical text, is the hash."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from continust.log import canonical

texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@given(
    id=st.uuids(),
    seq=st.integers(1, 2**63 - 1),
    type=texts,
    actor=texts,
    payload=st.dictionaries(texts, json_values, max_size=5),
    causation=st.none() | st.uuids(),
    correlation=st.none() | st.uuids(),
    moment=st.datetimes(timezones=st.just(UTC)),
)
def test_it_equals_the_hash_of_the_event_body(
    id, seq, type, actor, payload, causation, correlation, moment
):
    prev = canonical.GENESIS
    cause = str(causation) if causation else None
    correlated = str(correlation) if correlation else None
    expected = canonical.event_hash(
        prev,
        canonical.event_body(
            id=str(id),
            seq=seq,
            type=type,
            timestamp=moment,
            payload=payload,
            causation=cause,
            correlation=correlated,
            actor=actor,
        ),
    )
    assert (
        canonical.event_hash_of_text(
            prev,
            id=str(id),
            seq=seq,
            type=type,
            timestamp=moment,
            payload_text=canonical.canonical_json(payload),
            causation=cause,
            correlation=correlated,
            actor=actor,
        )
        == expected
    )


def test_it_escapes_what_json_escapes():
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    event_id = str(uuid.uuid4())
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 line-sep \u2028 é'
    body = canonical.event_body(
        id=event_id,
        seq=1,
        type=tricky,
        timestamp=moment,
        payload={"k": tricky},
        causation=None,
        correlation=None,
        actor=tricky,
    )
    assert canonical.event_hash_of_text(
        "0" * 64,
        id=event_id,
        seq=1,
        type=tricky,
        timestamp=moment,
        payload_text=canonical.canonical_json({"k": tricky}),
        causation=None,
        correlation=None,
        actor=tricky,
    ) == canonical.event_hash("0" * 64, body)

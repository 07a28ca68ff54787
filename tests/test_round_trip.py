"""What is hashed is what the database gives back: numbers and text survive a round trip.

Each value goes in through the real append path and comes back out of the database
as a reader (and ``verify``) sees it; its canonical text, and so every hash over it,
must not change on the way.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import unicodedata
import uuid

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent
from continust.interchange.jsonl import export_lines, import_lines
from continust.log import canonical
from continust.log.projects import create_project, create_stream
from continust.log.states import state_of
from continust.log.store import NewEvent, append
from continust.models import Event, Stream
from tests.api.conftest import events_path

pytestmark = pytest.mark.django_db

NEGATIVE_ZEROS = [{"v": -0.0}, {"v": [-0.0]}, {"v": {"w": [1, {"x": -0.0}]}}]

EDGE_NUMBERS = [
    0,
    -0.0,
    0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-7,
    1.5e-10,
    0.1,
    2**53 - 1,
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    2**63 - 1,
    2**64,
    -(2**64),
    10**30,
    float(2**53),
    float(2**53 - 1),
    1e15,
    1e16,
    9999999999999998.0,
    1e20,
    1e308,
    -1e308,
    1.7976931348623157e308,
    1.0,
    -1.0,
    100.0,
    123456.789,
]

_names = itertools.count()

# JSON text as a database can hold it: no NUL and no lone surrogates (both are refused).
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=["\x00"]))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_NUMBERS),
)
escapes = st.sampled_from(
    [
        '"',
        "\\",
        "/",
        "\b",
        "\f",
        "\n",
        "\r",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\uffff",
        "😀",
        "é",
        "é",
    ]
)
strings = st.one_of(
    texts,
    st.lists(escapes, max_size=6).map("".join),
    texts.map(lambda s: unicodedata.normalize("NFD", s)),
    texts.map(lambda s: unicodedata.normalize("NFKC", s)),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def replace_project(alice):
    return create_project("rt", "Round trip", owner=alice)


def fresh_stream(project) -> Stream:
    return create_stream(project, f"s{next(_names)}", reducer="replace")


def assert_round_trip(stream: Stream, payload: dict) -> None:
    (version,) = append(stream, [NewEvent("set", payload)]).versions
    stored = Event.objects.get(pk=version.event.pk)
    written = canonical.canonical_json(version.event.payload)
    read = canonical.canonical_json(stored.payload)
    assert read == written, f"{payload!r} was hashed as {written} but reads back as {read}"
    assert canonical.state_hash(state_of(version.pk)) == version.state_id
    report = verify(streams=[stream])
    assert report.ok, report.breaks


@pytest.mark.parametrize("payload", NEGATIVE_ZEROS, ids=["field", "list", "nested"])
def test_a_negative_zero_is_stored_as_zero(replace_project, payload):
    stream = fresh_stream(replace_project)
    assert_round_trip(stream, payload)
    assert "-0" not in canonical.canonical_json(Event.objects.get(stream=stream).payload)


@pytest.mark.parametrize("number", EDGE_NUMBERS, ids=repr)
def test_an_edge_number_survives_the_database(replace_project, number):
    assert_round_trip(fresh_stream(replace_project), {"n": number, "in": [number]})


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=st.dictionaries(strings, documents, max_size=5))
def test_any_json_document_survives_the_database(replace_project, document):
    assert_round_trip(fresh_stream(replace_project), document)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(number=numbers)
def test_storable_numbers_keep_their_value(number):
    kept = canonical.storable(number)
    assert kept == number
    assert not (isinstance(kept, float) and math.copysign(1.0, kept) < 0 and kept == 0)


def test_the_command_line_stores_a_negative_zero_as_zero(replace_project):
    stream = fresh_stream(replace_project)
    call_command(
        "append",
        "--project",
        "rt",
        "--stream",
        stream.name,
        "--type",
        "set",
        "--payload",
        '{"v": -0e0, "w": [-0.0]}',
    )
    assert Event.objects.get(stream=stream).payload == {"v": 0.0, "w": [0.0]}
    stream.refresh_from_db()
    assert verify(streams=[stream]).ok


def test_the_api_stores_a_negative_zero_as_zero(client, alice, stream):
    from tests.api.conftest import Api, issue

    api = Api(client, issue(alice, [stream.project]))
    raw = '{"events": [{"type": "set", "payload": {"v": -0.0, "w": -0e0, "x": [-0.0]}}]}'
    answer = api.post(events_path(), raw=raw)
    assert answer.status_code == 201, answer.content
    assert (
        canonical.canonical_json(Event.objects.get(stream=stream).payload)
        == '{"v":0.0,"w":0.0,"x":[0.0]}'
    )
    assert verify().ok


def test_duplicate_keys_in_raw_api_json_keep_the_last_and_verify(client, alice, stream):
    from tests.api.conftest import Api, issue

    api = Api(client, issue(alice, [stream.project]))
    raw = (
        '{"events": [{"type": "set", "payload": {"k": 1, "b": "\\u00e9", "k": 2.50, '
        '"a": "e\\u0301", "b": "\\n\\"\\\\"}}]}'
    )
    answer = api.post(events_path(), raw=raw)
    assert answer.status_code == 201, answer.content
    stored = Event.objects.get(stream=stream).payload
    assert stored == {"k": 2.5, "a": "e\u0301", "b": '\n"\\'}
    assert json.dumps(stored, sort_keys=True) == json.dumps(
        json.loads(raw)["events"][0]["payload"], sort_keys=True
    )
    assert verify().ok


def test_an_import_refuses_a_negative_zero_it_cannot_store(replace_project, alice):
    source = fresh_stream(replace_project)
    append(source, [NewEvent("set", {"v": 1.5})])
    lines = list(export_lines(replace_project, [source.name]))
    # A file written where -0.0 was kept (an older SQLite database, another tool):
    # its hash covers "-0.0", which PostgreSQL would give back as 0.0.
    event = json.loads(lines[1])
    event["payload"], event["id"] = {"v": -0.0}, str(uuid.uuid4())
    event["hash"] = canonical.event_hash(
        event["prev_hash"],
        canonical.event_body(
            id=event["id"],
            seq=event["seq"],
            type=event["type"],
            timestamp=datetime.datetime.fromisoformat(event["timestamp"]),
            payload=event["payload"],
            causation=None,
            correlation=None,
            actor=event["actor"],
        ),
    )
    target = create_project("other", "Other", owner=alice)
    with pytest.raises(InvalidEvent, match="negative zero"):
        import_lines(target, [lines[0], json.dumps(event)])
    assert not Stream.objects.filter(project=target).exists()


def test_verify_passes_after_a_negative_zero(replace_project):
    stream = fresh_stream(replace_project)
    append(stream, [NewEvent("set", {"v": -0.0})])
    call_command("verify", "--project", "rt")

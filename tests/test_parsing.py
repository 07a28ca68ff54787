"""The parsers of what users type: every input parses to a value that round-trips, or is
refused with InvalidName; never another exception. Over all of Unicode and the bigint range."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from continust.core import parsing
from continust.core.errors import InvalidName
from continust.core.parsing import (
    BIGINT_MAX,
    NAME_MAX,
    format_cursor,
    parse_branch_name,
    parse_cursor,
    parse_event_id,
    parse_number,
    parse_pointer,
    parse_search,
    parse_slug,
    parse_stream_name,
    parse_timestamp,
    parse_version_ref,
)
from continust.log.projects import create_stream
from continust.models import Project, Stream, Version

# Every code point, lone surrogates and NUL included.
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=260)
# Text near the rules: digits of every script, white space, controls, v, dots and hyphens.
TRICKY = st.text(
    st.sampled_from("0123456789vV.-/~ \t\x00\x85\u3000\ud800¹²³١٢१२٣߁𝟙½aZ_\u202e\x7f"), max_size=30
)
TEXTS = st.one_of(ANY_TEXT, TRICKY)
NON_ASCII_DIGITS = [c for c in map(chr, range(0x80, 0x110000)) if c.isdigit()]


def refused_or(parser, text):
    """Return what the parser makes of the text, or None when it refuses it."""
    try:
        return parser(text)
    except InvalidName as err:
        assert str(err), "the refusal says what was wrong"
        return None


def storable(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.mark.parametrize("typed", ["¹3", "١٢", "१२", "3²", "١", "v١٢", "𝟙"])
def test_digits_of_other_scripts_name_no_number(typed):
    with pytest.raises(InvalidName, match="digits 0-9"):
        parse_number(typed)
    assert parse_version_ref(typed).number is None


def test_every_non_ascii_digit_is_refused():
    for char in NON_ASCII_DIGITS:
        assert refused_or(parse_number, char) is None, f"U+{ord(char):04X}"


@given(TEXTS)
@example("9223372036854775807")
@example("9223372036854775808")
@example("0" * 40 + "7")
def test_a_number_is_ascii_digits_within_bigint(text):
    number = refused_or(parse_number, text)
    if number is None:
        return
    assert 0 <= number <= BIGINT_MAX
    assert re.fullmatch(r"[0-9]+", text.strip())
    assert parse_number(str(number)) == number


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_numbers_round_trip_inside_the_range_and_are_refused_outside(number):
    parsed = refused_or(parse_number, str(number))
    assert parsed == (number if 0 <= number <= BIGINT_MAX else None)


@given(TEXTS)
@example("v12")
@example(" 12 ")
@example("v" + "9" * 30)
@example("\x00")
@example("\ud800")
def test_a_version_reference_round_trips(text):
    ref = refused_or(parse_version_ref, text)
    if ref is None:
        return
    assert ref.text == text.strip() and 1 <= len(ref.text) <= NAME_MAX
    assert storable(ref.text)
    assert parse_version_ref(ref.text) == ref
    spelled = re.fullmatch(r"[vV]?([0-9]+)", ref.text)
    if ref.number is not None:
        assert spelled and int(spelled.group(1)) == ref.number <= BIGINT_MAX
    else:
        assert not spelled or int(spelled.group(1)) > BIGINT_MAX


@given(st.text(ANY_CHAR, min_size=1, max_size=NAME_MAX))
def test_the_text_pattern_says_exactly_which_references_are_read(text):
    """The spec's pattern, as a client reads it, and the parser agree."""
    matches = re.fullmatch(parsing.TEXT_PATTERN, text) is not None and storable(text)
    assert (refused_or(parse_version_ref, text) is not None) == matches


@given(st.text(ANY_CHAR, min_size=1, max_size=NAME_MAX))
def test_the_name_pattern_says_exactly_which_names_are_read(text):
    matches = re.fullmatch(parsing.NAME_PATTERN, text) is not None and storable(text)
    assert (refused_or(parse_stream_name, text) == text) == matches


@given(TEXTS)
def test_stream_and_branch_names_hold_no_white_space(text):
    for parser in (parse_stream_name, parse_branch_name):
        name = refused_or(parser, text)
        if name is not None:
            assert name == text.strip() and parser(name) == name
            assert not any(c.isspace() or ord(c) < 32 for c in name) and storable(name)


@given(TEXTS)
def test_a_slug_is_ascii(text):
    slug = refused_or(parse_slug, text)
    if slug is not None:
        assert slug.isascii() and re.fullmatch(r"[-a-zA-Z0-9_]{1,64}", slug)


@given(TEXTS)
@example("a\x00b")
@example("  ")
def test_a_search_term_is_storable_text(text):
    term = refused_or(parse_search, text)
    if term is not None:
        assert term == text.strip() and storable(term) and parse_search(term) == term


@given(st.one_of(TEXTS, st.uuids().map(str), st.uuids().map(lambda u: u.hex)))
@example("١٢345678-1234-1234-1234-123456789abc")
@example("{12345678123456781234567812345678}")
def test_an_event_id_is_a_uuid_in_ascii_hex(text):
    parsed = refused_or(parse_event_id, text)
    if parsed is not None:
        assert isinstance(parsed, uuid.UUID) and text.strip().isascii()
        assert parse_event_id(str(parsed)) == parsed


@given(st.lists(st.integers(min_value=0, max_value=BIGINT_MAX), min_size=1, max_size=4))
def test_cursors_round_trip(positions):
    assert parse_cursor(format_cursor(*positions), len(positions)) == tuple(positions)


@given(TEXTS, st.integers(min_value=1, max_value=3))
@example("1.2.¹3", 3)
@example("1..2", 3)
@example("1.99999999999999999999", 2)
def test_a_cursor_is_numbers_joined_by_dots(text, parts):
    positions = refused_or(lambda t: parse_cursor(t, parts), text)
    if positions is not None:
        assert len(positions) == parts and all(0 <= p <= BIGINT_MAX for p in positions)
        assert parse_cursor(format_cursor(*positions), parts) == positions


@given(TEXTS)
@example("/a~2")
@example("/a~1b/~0")
@example("")
def test_a_json_pointer_round_trips_through_its_tokens(text):
    tokens = refused_or(parse_pointer, text)
    if tokens is not None:
        rebuilt = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)
        assert parse_pointer(rebuilt) == tokens and storable(rebuilt)


OFFSETS = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)


@given(st.datetimes(timezones=OFFSETS | st.just(UTC)))
def test_timestamps_with_an_offset_round_trip_as_utc(moment):
    parsed = refused_or(parse_timestamp, moment.isoformat())
    if parsed is not None:
        assert parsed.tzinfo is UTC and parsed == moment
        assert parse_timestamp(parsed.isoformat()) == parsed


@given(TEXTS)
@example("2024-01-01T00:00:00")
@example("0001-01-01T00:00:00+01:00")
@example("٢٠٢٤-01-01")
def test_a_timestamp_needs_an_offset_and_a_year_in_range(text):
    parsed = refused_or(parse_timestamp, text)
    if parsed is not None:
        assert parsed.tzinfo is UTC and 1 <= parsed.year <= 9998


def test_a_timestamp_is_refused_at_the_edges_of_the_calendar():
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=5)))
    with pytest.raises(InvalidName, match="out of range"):
        parse_timestamp(late.isoformat())
    with pytest.raises(InvalidName, match="UTC offset"):
        parse_timestamp("2024-01-01T00:00:00")


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=TEXTS)
def test_what_the_parsers_return_the_database_stores_and_gives_back(text):
    """On PostgreSQL too: a parsed name never makes a query fail, and round-trips."""
    name = refused_or(parse_stream_name, text)
    term = refused_or(parse_search, text)
    ref = refused_or(parse_version_ref, text)
    with transaction.atomic():
        project = Project.objects.get_or_create(slug="names", defaults={"name": "names"})[0]
        if name is not None:
            created = create_stream(project, name)
            assert Stream.objects.get(project=project, name=name).pk == created.pk
        if term is not None:
            Stream.objects.filter(name__icontains=term).exists()
        if ref is not None:
            Version.objects.filter(key=ref.text).exists()
            if ref.number is not None:
                Version.objects.filter(pk=ref.number).exists()
        transaction.set_rollback(True)


def test_an_offset_that_is_not_whole_minutes_is_refused():
    """Python 3.11 read ``+00:00:00.000001`` and dropped the microsecond: a moved moment."""
    with pytest.raises(InvalidName, match="whole minutes"):
        parse_timestamp("2000-01-01T00:00:00+00:00:00.000001")
    with pytest.raises(InvalidName, match="whole minutes"):
        parse_timestamp("2000-01-01T00:00:00+01:00:30")
    assert parse_timestamp("2000-01-01T01:30:00+01:30") == datetime(2000, 1, 1, tzinfo=UTC)

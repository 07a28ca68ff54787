"""Reading what users type: one parser for each kind of name, shared by every surface.

The HTTP API, the explorer and the command line read version references, event
ids, positions and cursors, JSON Pointers, timestamps, slugs, stream names and
search terms through these functions, and nothing else. Each returns a plain
value or raises ``InvalidName`` naming the input; none touches the database, so
a refused input changes nothing and never reaches a query.

The rules, as the docs (``docs/names.md``) and the API's spec state them:

- numbers are ASCII digits only, ``[0-9]``, and fit PostgreSQL's ``bigint``:
  ``str.isdigit`` and ``int`` also read superscripts and other scripts' digits
  (``¹3``, ``١٢``), which would name a version nobody typed;
- text holds no control character (Unicode category Cc, U+0000 to U+001F and
  U+007F to U+009F) and no lone surrogate: PostgreSQL cannot store NUL, and
  UTF-8 cannot carry a surrogate;
- what a user types is trimmed of white space at both ends, where white space is
  what ``str.isspace`` says (U+0085 and U+3000 included).

The ``*_PATTERN`` constants are the same rules as regular expressions, written
with explicit ``\\uXXXX`` classes so that Python, JavaScript and the Rust engine
pydantic validates with read them alike (``\\s`` differs between the three).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import jsonpointer

from continust.core.errors import AmbiguousName, BadRevision, InvalidEvent, InvalidName

BIGINT_MAX = 2**63 - 1
NAME_MAX = 200  # the longest stream name, branch name, key or reference
SLUG_MAX = 64
SEARCH_MAX = 200

# Characters, as regular-expression class bodies.
CONTROLS = r"\u0000-\u001f\u007f-\u009f"
SPACES = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
    r"\u202f\u205f\u3000"
)

SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"
# A stream or branch name: no white space anywhere, no control character.
NAME_PATTERN = rf"^[^{SPACES}{CONTROLS}]+$"
# Free text (a reference, a search term): no control character, something besides spaces.
TEXT_PATTERN = rf"^[^{CONTROLS}]*[^{SPACES}{CONTROLS}][^{CONTROLS}]*$"
# A tag's name: a branch name without the characters revisions use.
TAG_PATTERN = rf"^[^{SPACES}{CONTROLS}~^:]+$"
# A position: what fits a bigint for sure, in ASCII digits.
POSITION_PATTERN = r"^[0-9]{1,18}$"

_SLUG = re.compile(SLUG_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_DIGITS = re.compile(r"[0-9]+")
_VERSION_NUMBER = re.compile(r"[vV]?([0-9]+)")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12}"
)


@dataclass(frozen=True)
class VersionRef:
    """A reference to a version as typed: a branch name, an external key or an id.

    ``number`` is the id it spells (``12`` or ``v12``), when it spells one; which of
    the three it names is for the lookup to say, since a branch may be called ``12``.
    """

    text: str
    number: int | None


def _shown(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def storable_text(text: str, what: str = "text") -> str:
    """Return the text if PostgreSQL can store it: no NUL, no lone surrogate."""
    if "\x00" in text:
        raise InvalidName(f"{what} {_shown(text)} contains U+0000, which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"{what} {_shown(text)} contains a lone surrogate") from None
    return text


def _plain(text: str, what: str, *, limit: int = NAME_MAX) -> str:
    """Return the text trimmed, if it is 1 to ``limit`` characters without controls."""
    storable_text(text, what)
    trimmed = text.strip()
    if not trimmed:
        raise InvalidName(f"{what} is empty")
    if not _TEXT.fullmatch(text):  # a tab or a newline at an end is a control character too
        raise InvalidName(f"{what} {_shown(text)} contains a control character")
    if len(trimmed) > limit:
        raise InvalidName(f"{what} {_shown(trimmed)} is longer than {limit} characters")
    return trimmed


def parse_number(
    text: str | int, what: str = "number", *, minimum: int = 0, maximum: int = BIGINT_MAX
) -> int:
    """Return the whole number written in ASCII digits, within [minimum, maximum]."""
    if isinstance(text, int) and not isinstance(text, bool):
        number = text
    else:
        digits = storable_text(str(text), what).strip()
        if not _DIGITS.fullmatch(digits):
            raise InvalidName(f"{what} {_shown(digits)} is not a number in the digits 0-9")
        if len(digits.lstrip("0")) > len(str(maximum)):
            raise InvalidName(f"{what} {_shown(digits)} is above {maximum}")
        number = int(digits)
    if not minimum <= number <= maximum:
        raise InvalidName(f"{what} {number} is not between {minimum} and {maximum}")
    return number


def parse_version_ref(text: str | int) -> VersionRef:
    """Return the reference a user typed to name a version."""
    if isinstance(text, int) and not isinstance(text, bool):
        given = parse_number(text, "version id")
        return VersionRef(str(given), given)
    trimmed = _plain(str(text), "version reference")
    match = _VERSION_NUMBER.fullmatch(trimmed)
    number: int | None = None
    if match is not None and len(match.group(1).lstrip("0")) <= len(str(BIGINT_MAX)):
        value = int(match.group(1))
        number = value if value <= BIGINT_MAX else None
    return VersionRef(trimmed, number)


@dataclass(frozen=True)
class Step:
    """One step of a revision's walk: ``~n`` (the n-th first-parent ancestor) or ``^n``
    (the n-th parent; ``^`` alone is the first)."""

    kind: str  # "~" or "^"
    count: int

    def __str__(self) -> str:
        return f"{self.kind}{self.count}"


@dataclass(frozen=True)
class Revision:
    """A revision as git users type it: a name (a branch, tag, key or id) and the steps
    walked from the version it names (``main~3``, ``v120^2``, ``main~2^2~1``)."""

    text: str
    base: VersionRef
    steps: tuple[Step, ...]


_STEPS = re.compile(r"((?:[~^][0-9]*)+)\Z")
_STEP = re.compile(r"([~^])([0-9]*)")
_STEP_CHARACTERS = frozenset("~^")
RANGE_SEPARATOR = ".."
RANGE_MAX = 2 * NAME_MAX + len(RANGE_SEPARATOR)


def parse_revision(text: str | int) -> Revision:
    """Return the revision a user typed: a version reference, then ``~n`` / ``^n`` steps.

    ``main~3`` is the third first-parent ancestor of ``main`` (``~`` alone is ``~1``);
    ``v120^2`` is the second parent of version 120 (``^`` alone is ``^1``, ``^0`` the
    version itself). A text without steps is a plain reference. Whether a name holding
    ``~`` or ``^`` is itself a branch or a tag is for the lookup to say first.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return Revision(str(text), parse_version_ref(text), ())
    trimmed = _plain(str(text), "revision")
    if RANGE_SEPARATOR in trimmed:
        raise BadRevision(f"{_shown(trimmed)} is a range of versions (A..B); name one version here")
    match = _STEPS.search(trimmed)
    if match is None:
        if _STEP_CHARACTERS & set(trimmed):
            raise BadRevision(
                f"{_shown(trimmed)} is no name and no revision: ~ and ^ end a revision, "
                "each followed by a number or nothing (main~3, v12^2)"
            )
        return Revision(trimmed, parse_version_ref(trimmed), ())
    base_text = trimmed[: match.start()]
    if not base_text.strip():
        raise BadRevision(
            f"revision {_shown(trimmed)} walks from nothing: start with a branch, tag or version"
        )
    steps = []
    for kind, digits in _STEP.findall(match.group(1)):
        try:
            count = parse_number(digits, f"the count of {kind}{digits}") if digits else 1
        except InvalidName as err:
            raise BadRevision(f"revision {_shown(trimmed)}: {err}") from None
        steps.append(Step(kind, count))
    return Revision(trimmed, parse_version_ref(base_text), tuple(steps))


def parse_revision_range(text: str) -> tuple[str, str]:
    """Return the two ends of a range ``A..B`` as typed: the versions B reaches and A
    does not (``git rev-list A..B``); in a diff, from A to B. Both ends are required."""
    trimmed = _plain(str(text), "revision range", limit=RANGE_MAX)
    if trimmed.count(RANGE_SEPARATOR) != 1 or "..." in trimmed:
        raise BadRevision(f"{_shown(trimmed)} is not a range A..B of two revisions")
    start, end = (part.strip() for part in trimmed.split(RANGE_SEPARATOR))
    if not start or not end:
        raise BadRevision(f"range {_shown(trimmed)} needs a revision on both sides of ..")
    for side in (start, end):
        if len(side) > NAME_MAX:
            raise BadRevision(
                f"range {_shown(trimmed)}: {_shown(side)} is longer than {NAME_MAX} characters"
            )
    return start, end


def is_revision_range(text: str) -> bool:
    """Tell whether a typed text is a range (``A..B``) rather than one revision."""
    return RANGE_SEPARATOR in text


def parse_event_id(text: str | uuid.UUID) -> uuid.UUID:
    """Return the event id: a UUID in hexadecimal digits, hyphens optional."""
    if isinstance(text, uuid.UUID):
        return text
    trimmed = storable_text(str(text), "event id").strip()
    if not _UUID.fullmatch(trimmed):
        raise InvalidName(f"{_shown(trimmed)} is not an event id (a UUID)")
    return uuid.UUID(trimmed)


def parse_slug(text: str) -> str:
    """Return a project's slug: 1 to 64 ASCII letters, digits, hyphens or underscores."""
    storable_text(text, "project slug")
    if len(text) > SLUG_MAX or not _SLUG.fullmatch(text):
        raise InvalidName(f"{_shown(text)} is not a project slug (letters, digits, hyphens)")
    return text


def parse_stream_name(text: str) -> str:
    """Return a stream's name: 1 to 200 characters, no white space or control character."""
    return _name(text, "stream name")


def parse_branch_name(text: str) -> str:
    """Return a branch's name: 1 to 200 characters, no white space or control character."""
    return _name(text, "branch name")


_VERSION_ID = re.compile(r"[vV]?[0-9]+")


def parse_tag_name(text: str) -> str:
    """Return a tag's name: a branch name without ``~``, ``^`` or ``:`` (``TAG_PATTERN``);
    one that revisions would read otherwise (``a..b``, an id such as ``12`` or ``v12``)
    is an ``AmbiguousName``."""
    return _unambiguous(_name(text, "tag name"), "tag name")


def parse_new_branch_name(text: str) -> str:
    """Return the name of a branch about to be created: as a tag's name, so that a
    revision typed later never reads it as something else (a branch ``v3`` would hide
    version 3). Branches made before this rule keep their names (``parse_branch_name``)."""
    return _unambiguous(_name(text, "branch name"), "branch name")


def _unambiguous(name: str, what: str) -> str:
    if not _TAG.fullmatch(name):
        raise InvalidName(f"{what} {_shown(name)} contains ~, ^ or :, which revisions use")
    if RANGE_SEPARATOR in name:
        raise AmbiguousName(f"{what} {_shown(name)} holds .., which reads as a range")
    if _VERSION_ID.fullmatch(name):
        raise AmbiguousName(f"{what} {_shown(name)} spells a version id")
    return name


def _name(text: str, what: str) -> str:
    trimmed = _plain(text, what)
    if not _NAME.fullmatch(trimmed):
        raise InvalidName(f"{what} {_shown(trimmed)} contains white space")
    return trimmed


INTERNAL_TYPE_PREFIX: Final = "continust."
"""The log's own event types (a merge, a promotion, a revert) start with this."""


def parse_event_type(text: str) -> str:
    """Return the type a writer gives an event; the log's own types (``continust.…``) are
    refused (``InvalidEvent``): only the log writes merges, promotions and reverts."""
    if text.startswith(INTERNAL_TYPE_PREFIX):
        raise InvalidEvent(
            f"event types starting with {INTERNAL_TYPE_PREFIX!r} are the log's own "
            f"(merges, promotions, reverts): {_shown(text)} cannot be appended"
        )
    return text


def parse_search(text: str) -> str:
    """Return a search term, trimmed; empty when nothing was typed."""
    storable_text(text, "search term")
    trimmed = text.strip()
    if not trimmed:
        return ""
    return _plain(trimmed, "search term", limit=SEARCH_MAX)


def parse_cursor(text: str, parts: int) -> tuple[int, ...]:
    """Return the positions a cursor holds: ``parts`` numbers joined by dots (``12.40``)."""
    pieces = storable_text(text, "cursor").split(".")
    if len(pieces) != parts:
        raise InvalidName(f"cursor {_shown(text)} is not {parts} numbers joined by dots")
    return tuple(parse_number(piece, "cursor position") for piece in pieces)


def format_cursor(*positions: int) -> str:
    """Write positions as ``parse_cursor`` reads them."""
    return ".".join(str(p) for p in positions)


def parse_pointer(text: str) -> tuple[str, ...]:
    """Return the reference tokens of an RFC 6901 JSON Pointer (``/a/0/b~1c``)."""
    storable_text(text, "JSON Pointer")
    try:
        return tuple(jsonpointer.JsonPointer(text).parts)
    except jsonpointer.JsonPointerException as err:
        raise InvalidName(f"{_shown(text)} is not a JSON Pointer: {err}") from err


_RFC3339_OFFSET = re.compile(r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z")


def parse_timestamp(text: str | datetime) -> datetime:
    """Return an RFC 3339 timestamp with a UTC offset as UTC, years 1 to 9998."""
    if isinstance(text, datetime):
        moment = text
    else:
        trimmed = storable_text(text, "timestamp").strip()
        if not trimmed.isascii():
            raise InvalidName(f"{_shown(trimmed)} is not an RFC 3339 timestamp")
        try:
            moment = datetime.fromisoformat(trimmed)
        except ValueError as err:
            raise InvalidName(f"{_shown(trimmed)} is not an RFC 3339 timestamp") from err
        if moment.tzinfo is not None and not _RFC3339_OFFSET.search(trimmed):
            # Python 3.11 reads "+00:00:00.000001" as UTC: a moment moved, silently.
            raise InvalidName(
                f"timestamp {_shown(trimmed)} has an offset that is not whole minutes (Z or +hh:mm)"
            )
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidName(f"timestamp {moment.isoformat()} needs a UTC offset")
    if offset % timedelta(minutes=1):
        # RFC 3339 offsets are hours and minutes; Python reads seconds and microseconds
        # too, and 3.11 drops the microseconds: refuse rather than move the moment.
        raise InvalidName(f"timestamp {moment.isoformat()} has an offset that is not whole minutes")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as err:
        raise InvalidName(f"timestamp {moment.isoformat()} is out of range") from err
    if not 1 <= moment.year <= 9998:
        raise InvalidName(f"timestamp {moment.isoformat()} is out of range")
    return moment

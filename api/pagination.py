"""Cursor pagination: every list answers a bounded page and the cursor of the next one.

A cursor is opaque to clients: URL-safe base64 of a small JSON value, the key
of the last item served (or, for computed ranges, the versions the range was
resolved to and an offset, so a moved branch cannot shift a walk under way).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from api.parsing import MalformedJSON, check_strings

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

M = TypeVar("M", bound=Model)
T = TypeVar("T")


class BadCursor(ValueError):
    """A cursor this API did not hand out."""


def encode_cursor(value: Any) -> str:
    """Return the cursor text for a key."""
    text = json.dumps(value, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, kind: type | tuple[type, ...]) -> Any:
    """Return the key a cursor holds; BadCursor unless it holds a ``kind``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode("utf-8"))
        check_strings(value)
    except (binascii.Error, UnicodeDecodeError, ValueError, MalformedJSON) as err:
        raise BadCursor(f"{cursor[:40]!r} is not a cursor of this list") from err
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadCursor(f"{cursor[:40]!r} is not a cursor of this list")
    return value


def keyset_page(
    queryset: QuerySet[M],
    key: str,
    after: str | None,
    limit: int,
    kind: type,
    value: Callable[[M], Any] | None = None,
) -> tuple[list[M], str | None]:
    """Return the rows after a cursor, ordered by a unique key, and the next cursor.

    ``value`` reads the key from a row when it is not an attribute of it (a
    lookup across a relation, say).
    """
    rows = queryset.order_by(key)
    if after is not None:
        rows = rows.filter(**{f"{key}__gt": decode_cursor(after, kind)})
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    if not more:
        return page, None
    last = value(page[-1]) if value else getattr(page[-1], key)
    return page, encode_cursor(last)


def offset_page(
    items: Sequence[T], start: int, limit: int, cursor_for: Callable[[int], Any]
) -> tuple[list[T], str | None]:
    """Return a slice of a computed list and the cursor of the rest, if any."""
    end = start + limit
    return list(items[start:end]), encode_cursor(cursor_for(end)) if end < len(items) else None

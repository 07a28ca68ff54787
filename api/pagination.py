"""Cursor pagination: every list answers a bounded page and the cursor of the next one.

A cursor is what the list is ordered by, written so the spec can say exactly
which cursors exist: the last id or position served (``42``), the last name
served (``main``), or, for computed ranges, the versions the range was resolved
to and an offset joined by dots (``12.40.100``), so a moved branch cannot shift
a walk under way. Each is read through ``continust.core.parsing``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from continust.core.parsing import format_cursor, parse_number, storable_text

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

M = TypeVar("M", bound=Model)
T = TypeVar("T")


def cursor_key(after: str, kind: type) -> int | str:
    """Return the key a keyset cursor holds: a position for ``int``, else a name."""
    return parse_number(after, "cursor") if kind is int else storable_text(after, "cursor")


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
        rows = rows.filter(**{f"{key}__gt": cursor_key(after, kind)})
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    if not more:
        return page, None
    last = value(page[-1]) if value else getattr(page[-1], key)
    return page, str(last)


def offset_page(
    items: Sequence[T], start: int, limit: int, pinned: tuple[int, ...]
) -> tuple[list[T], str | None]:
    """Return a slice of a computed list and the cursor of the rest (``pinned``, then the
    offset), if any."""
    end = start + limit
    return list(items[start:end]), format_cursor(*pinned, end) if end < len(items) else None

"""A database too busy to take a write: 503 with Retry-After, never a 500.

SQLite has one writer at a time; a writer that waits longer than its busy timeout
gets ``OperationalError: database is locked``. PostgreSQL says the same with
``lock_not_available`` when a ``lock_timeout`` runs out. Either is the server being
busy, not broken: the client may simply try again. The middleware answers for the
explorer; the API registers ``busy_response`` with its own error handlers.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse

RETRY_AFTER_SECONDS = 1
_SQLITE_BUSY = ("database is locked", "database table is locked")
_POSTGRES_LOCK_NOT_AVAILABLE = "55P03"


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is a write that timed out waiting for a database lock."""
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.__cause__, "sqlstate", None) == _POSTGRES_LOCK_NOT_AVAILABLE:
        return True
    return any(text in str(error) for text in _SQLITE_BUSY)


def busy_response(response: HttpResponse) -> HttpResponse:
    """Mark a response as the 503 a busy database gives, with when to try again."""
    response.status_code = 503
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseBusyMiddleware:
    """Turn a write that timed out on a database lock into 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_busy(exception):
            return None
        return busy_response(
            HttpResponse(
                "The database is busy with another write. Try again in a moment.\n",
                content_type="text/plain; charset=utf-8",
            )
        )

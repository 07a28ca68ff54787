"""Error pages inside the layout, with a way back: never Django's bare or technical pages.

A name no record could have (``InvalidName``: ``?v=¹3``, a NUL in a search) is a
400; a missing project, stream, version or event a 404; a role too low a 403.
The domain raises its own errors; the middleware turns the two a view does not
handle itself into pages, and Django's ``handler4xx`` hooks render the others.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from continust.core.errors import (
    BadRevision,
    ContinustError,
    InvalidName,
    NotFound,
    StateReleased,
)

TITLES = {
    400: "That cannot be read",
    403: "Not allowed",
    404: "Not found",
    405: "Not a page to open",
    410: "Released by the retention policy",
    422: "That cannot be done",
}


def _back(path: str) -> str:
    """Return the page one level up from a path: the way back from an error."""
    parts = [p for p in path.split("/") if p]
    while parts and parts[-1] in {"s", "v", "events", "p"}:
        parts.pop()
    parts = parts[:-1]
    while parts and parts[-1] in {"s", "v", "events", "p"}:
        parts.pop()
    return "/" + "".join(f"{p}/" for p in parts)


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """Render an error inside the layout with a link one level up and one home."""
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": TITLES.get(status, "Something went wrong"),
            "message": message,
            "back": _back(request.path),
        },
        status=status,
    )


def _message(exception: Exception | None, default: str) -> str:
    first = exception.args[0] if exception is not None and exception.args else None
    return first if isinstance(first, str) and first else default


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 400, _message(exception, "The request could not be read."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 403, _message(exception, "You may not do this here."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_page(request, 404, _message(exception, "There is nothing at this address."))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token (a page opened before logging in again, or
    from elsewhere): a 403 page inside the layout that says how to go on; nothing changed."""
    return error_page(
        request,
        403,
        "This form was sent from a page that is no longer valid (for example one opened "
        "before you logged in again), so nothing was changed. Go back, reload the page and "
        "send it again.",
    )


class DomainErrors:
    """Turn the domain's InvalidName into a 400 page, NotFound and Http404 into a 404 page
    and PermissionDenied into a 403 page, inside the layout even in debug mode (where
    Django's handlers would show its technical pages instead); a GET of an address that
    takes only POST (Django's bare 405) into a 405 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and not response.content and request.method == "GET":
            # An address only a form sends to (``require_POST``), opened by hand or from
            # the history: say so inside the layout, keeping the Allow header.
            page = error_page(
                request,
                405,
                "This address only takes what a form sends; nothing was changed. Open the "
                "page the form is on and use it there.",
            )
            if response.has_header("Allow"):
                page["Allow"] = response["Allow"]
            return page
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, InvalidName):
            return error_page(request, 400, str(exception))
        if isinstance(exception, BadRevision):
            return error_page(request, 422, str(exception))
        if isinstance(exception, NotFound):
            return error_page(request, 404, str(exception))
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        if isinstance(exception, StateReleased):
            return error_page(request, 410, str(exception))
        if isinstance(exception, ContinustError):
            # A refusal a view did not expect (an upcaster failing on a read, say): the
            # domain's words inside the layout, never a server error.
            return error_page(request, 422, str(exception))
        return None

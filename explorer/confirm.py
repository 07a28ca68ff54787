"""Confirmation of irreversible actions: a page that says what will happen, then a POST.

Every irreversible action of the explorer (compact now, promote, discard, cancel a
replay, reset a pipeline, remove a member) goes through one: the page's button is a
link to the action's URL, whose GET renders what will happen (counts, branch, bytes)
with a form that POSTs ``confirm=yes`` back; a POST without it renders the same page and
does nothing. htmx loads the page's fragment in place (``#confirm``), so it works with
and without JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpResponse
from django.shortcuts import render

from continust.models import Membership
from explorer.access import HtmxHttpRequest

CONFIRM_FIELD = "confirm"


def confirmed(request: HtmxHttpRequest) -> bool:
    """Tell whether the request is the POST of a confirmation page."""
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes"


def confirmation(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    title: str,
    facts: Sequence[str],
    action: str,
    back: str,
    problem: str = "",
    url: str | None = None,
    hidden: Sequence[tuple[str, str]] = (),
) -> HttpResponse:
    """Render what an action will do and the form that does it; ``problem`` when it cannot.
    The form posts back to the page's path, or to ``url`` (which may carry a query), with
    the ``hidden`` fields the action needs again (what a form asked for)."""
    context = {
        "membership": membership,
        "project": membership.project,
        "title": title,
        "facts": facts,
        "action": action,
        "back": back,
        "problem": problem,
        "url": url or request.path,
        "hidden": hidden,
    }
    template = "confirm.html#confirm" if request.htmx else "confirm.html"
    return render(request, template, context)

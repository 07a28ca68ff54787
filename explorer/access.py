"""Who may see and do what: one decorator that every project view goes through.

A user who is not a member of the project gets 404, whatever the URL names, so
nobody learns that another team's project or stream exists; a member whose role
is too low gets 403; an anonymous visitor goes to the login page.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django_htmx.middleware import HtmxDetails

from continust.core.errors import ContinustError
from continust.models import Membership, Review, Role, Stream

View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    """A request past django-htmx's middleware: ``request.htmx`` tells whether htmx sent it."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A request that ``login_required`` let in, so its user is signed in."""

    user: User


def member_required(role: str = Role.VIEWER) -> Callable[[View], View]:
    """Resolve ``slug`` (and ``stream_id``) from the URL for a member holding ``role``.

    The view receives the membership as ``membership`` (and the stream as ``stream``)
    instead of the raw URL values.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapper(
            request: AuthenticatedHttpRequest, slug: str, *args: Any, **kwargs: Any
        ) -> HttpResponse:
            membership = (
                Membership.objects.select_related("project")
                .filter(project__slug=slug, user=request.user)
                .first()
            )
            if membership is None:
                raise Http404("No such project.")
            if not membership.allows(role):
                raise PermissionDenied(f"This needs the {role} role in {slug}.")
            if "stream_id" in kwargs:
                kwargs["stream"] = get_object_or_404(
                    Stream.objects.select_related("project"),
                    pk=kwargs.pop("stream_id"),
                    project=membership.project,
                )
            return view(request, *args, membership=membership, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper

    return decorator


def actor_of(request: HttpRequest) -> str:
    """The name a change a user makes here is recorded under: their username."""
    return request.user.get_username()


def refuse(request: HttpRequest, err: ContinustError, url: str) -> HttpResponse:
    """Say why a change was refused (it changed nothing) and go back to ``url``."""
    messages.error(request, str(err))
    return redirect(url)


def review_for(membership: Membership, review_id: int) -> Review:
    """The project's review of that id (404 for another project's)."""
    return get_object_or_404(
        Review.objects.select_related("stream", "project", "opened_event", "base", "head"),
        pk=review_id,
        project=membership.project,
    )

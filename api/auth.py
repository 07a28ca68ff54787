"""Who is calling and what they may see: bearer tokens, project visibility, write rights.

A token authenticates (401 otherwise). A project is visible when the token's
user is a member of it and the token is scoped to it; anything else answers 404
exactly as a project that does not exist, so a token never learns what it may
not see. Writing needs a write-scoped token and a member whose role includes
editor; a visible project without those answers 403.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from api.lookup import look_up, remember
from api.models import ApiToken, split_token, token_digest
from continust.core.errors import NotFound
from continust.models import Membership, Project, Role

# Refresh a token's last use at most this often: a write per request would cost
# more than the request.
LAST_USE_RESOLUTION = timedelta(minutes=1)


class BodyTooLarge(Exception):
    """A request body above the API's size limit, refused before it is read."""


class Forbidden(Exception):
    """A visible project where the token or its user may not do what was asked."""


def body_limit() -> int:
    """Return the largest request body the API reads, in bytes."""
    django_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if django_limit is None:
        return int(settings.CONTINUST_MAX_PAYLOAD_BYTES) * 4
    return int(django_limit)


def guard_body_size(request: HttpRequest) -> None:
    """Refuse a request whose declared body is above the limit, before anything reads it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = body_limit()
    if length > limit:
        raise BodyTooLarge(f"the request body has {length} bytes; the limit is {limit}")


def live(token: ApiToken, secret: str) -> bool:
    """Tell whether the token found by the secret's prefix is the secret, not revoked and
    of an active user; note its use (at most once a ``LAST_USE_RESOLUTION``)."""
    if token.revoked or not token.user.is_active:
        return False
    if not hmac.compare_digest(token.digest, token_digest(secret)):
        return False
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USE_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return True


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` with a personal API token."""

    openapi_description = (
        "A personal API token, created on the explorer's Tokens page: "
        "`Authorization: Bearer ctn_...`."
    )

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        guard_body_size(request)  # before anything reads the body
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        # The token, and the project and stream the path names, in one query; the
        # operation finds them again in ``api.lookup.recall``.
        prefix = split_token(token)
        if prefix is None:
            return None
        found = look_up(request, prefix)
        if found is None or not live(found.token, token):
            return None
        remember(request, found)
        return found.token


def visible_project(token: ApiToken, slug: str) -> tuple[Project, Membership]:
    """Return a project the token may see, with its user's membership; NotFound otherwise."""
    membership = (
        Membership.objects.select_related("project")
        .filter(user_id=token.user_id, project__slug=slug)
        .filter(
            project__in=ApiToken.projects.through.objects.filter(apitoken_id=token.pk).values(
                "project_id"
            )
        )
        .first()
    )
    if membership is None:
        raise NotFound(f"no project {slug!r}")
    return membership.project, membership


def writable_project(
    token: ApiToken, slug: str, *, role: str = Role.EDITOR, doing: str = "writing to"
) -> Project:
    """Return a visible project the token may write to as ``role`` (editor unless told);
    Forbidden when it may only read, or its user's role is below that."""
    project, membership = visible_project(token, slug)
    check_writable(token, project, membership, role=role, doing=doing)
    return project


def check_writable(
    token: ApiToken,
    project: Project,
    membership: Membership,
    *,
    role: str = Role.EDITOR,
    doing: str = "writing to",
) -> None:
    """Forbidden when the token may only read, or its user's role is below ``role``."""
    if not token.can_write:
        raise Forbidden("this token is read-only; create a token with write scope")
    if not membership.allows(role):
        raise Forbidden(
            f"{doing} {project.slug} needs the {role} role; you are a {membership.role}"
        )

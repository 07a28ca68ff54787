"""Personal API tokens: a user's key to the API, scoped to projects and to reading or writing.

Only a SHA-256 digest of a token is stored. The token itself is high-entropy
random text, so a plain hash is enough (no salt, no slow hash: there is nothing
to guess); a short public prefix, part of the token, finds its row. The token
is shown once, when it is issued, and never again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from continust.models import Project

TOKEN_LABEL = "ctn"


class Scope(models.TextChoices):
    READ = "read", "read"
    WRITE = "write", "read and write"


class TokenRefused(ValueError):
    """A token that cannot be issued as asked: a project the user is not a member of, say."""


def token_digest(token: str) -> str:
    """Return the digest stored for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def split_token(token: str) -> str | None:
    """Return the lookup prefix of a well-formed token, or None."""
    label, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if label != TOKEN_LABEL or len(secret) < 32:
        return None
    if len(prefix) != 12 or prefix.strip("0123456789abcdef"):
        return None
    return prefix


class ApiToken(models.Model):
    """A personal API token; its holder acts as its user, within its projects and scope."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    projects = models.ManyToManyField(Project, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_LABEL}_{self.prefix}_…)"

    @property
    def can_write(self) -> bool:
        return self.scope == Scope.WRITE

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def issue(
        cls, user: User, name: str, projects: Iterable[Project], scope: str
    ) -> tuple[ApiToken, str]:
        """Create a token for a user; return it with its secret text, never stored or shown again.

        Every project must be one the user is a member of.
        """
        chosen = list(projects)
        allowed = set(Project.objects.filter(memberships__user=user).values_list("pk", flat=True))
        outside = [p.slug for p in chosen if p.pk not in allowed]
        if outside:
            raise TokenRefused(f"you are not a member of {', '.join(sorted(outside))}")
        if scope not in Scope.values:
            raise TokenRefused(f"{scope!r} is not a scope; use read or write")
        name = name.strip()
        if not name or len(name) > 100:
            raise TokenRefused("a token needs a name of 1 to 100 characters")
        for _ in range(3):
            prefix = secrets.token_hex(6)
            secret = f"{TOKEN_LABEL}_{prefix}_{secrets.token_urlsafe(32)}"
            try:
                with transaction.atomic():
                    token = cls.objects.create(
                        user=user,
                        name=name,
                        prefix=prefix,
                        digest=token_digest(secret),
                        scope=scope,
                    )
                    token.projects.set(chosen)
            except IntegrityError:  # a prefix already taken: draw again
                continue
            return token, secret
        raise TokenRefused("could not draw a fresh token prefix; try again")

    def revoke(self) -> None:
        """Revoke the token for good; it authenticates nothing from now on."""
        now = timezone.now()
        if type(self).objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=now):
            self.revoked_at = now

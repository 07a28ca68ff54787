"""The Tokens pages: list a user's API tokens, issue one (shown once), revoke one."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from api.forms import TokenForm
from api.models import ApiToken, TokenRefused


@require_http_methods(["GET", "POST"])
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """Show the user's tokens and the form to issue one; after issuing, its secret, once."""
    user = cast(User, request.user)  # login_required let only a user in
    form = TokenForm(user, request.POST or None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, secret = ApiToken.issue(
                    user,
                    form.cleaned_data["name"],
                    form.cleaned_data["projects"],
                    form.cleaned_data["scope"],
                )
            except TokenRefused as err:
                form.add_error(None, str(err))
                status = 400
            else:
                issued = {"token": token, "secret": secret}
                form = TokenForm(user)
        else:
            status = 400
    listing = ApiToken.objects.filter(user=user).prefetch_related("projects")
    response = render(
        request,
        "api/tokens.html",
        {"form": form, "tokens": listing, "issued": issued},
        status=status,
    )
    if issued:  # the secret must not linger in any cache
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@login_required
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the user's tokens, after a confirmation page that names it (a GET, or
    a POST without ``confirm=yes``, shows it and changes nothing)."""
    token = get_object_or_404(ApiToken, pk=token_id, user=cast(User, request.user))
    if token.revoked:
        messages.info(request, f"Token “{token.name}” was revoked already.")
        return redirect("api-tokens")
    if not (request.method == "POST" and request.POST.get("confirm") == "yes"):
        projects = ", ".join(p.slug for p in token.projects.all()) or "no project"
        return render(
            request,
            "confirm.html",
            {
                "title": f"Revoke the token “{token.name}”?",
                "facts": [
                    f"every program using it ({token.scope} access to {projects}) gets 401 "
                    "from its next request on",
                    "a revoked token cannot be brought back; issue a new one instead",
                ],
                "action": f"Revoke “{token.name}”",
                "back": reverse("api-tokens"),
                "url": request.path,
            },
        )
    token.revoke()
    messages.success(request, f"Token “{token.name}” is revoked.")
    return redirect("api-tokens")

"""Verify and digest: a project's (or one stream's) hash chains, states, digests and branch
heads checked on demand, and a digest to download and check the log against later.

Both only read, so any member may use them, as the ``verify`` and ``digest`` commands
need no role. Verifying a large project takes as long as the command does.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from continust.audit import integrity
from continust.audit.digests import take_digest, verify_digest
from continust.core.errors import ContinustError
from continust.models import Membership
from explorer.access import member_required
from explorer.forms import VerifyForm
from explorer.verifications import recent

# A digest file larger than this is not one this project wrote.
DIGEST_LIMIT = 20 * 1024 * 1024


def _read_digest(upload: Any) -> Any:
    """Return the uploaded digest document; ValueError says what is wrong with the file."""
    if upload.size > DIGEST_LIMIT:
        raise ValueError(f"the digest file has {upload.size:,} bytes; a digest is far smaller")
    try:
        return json.loads(upload.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"the digest file is not JSON: {err}") from err


@require_http_methods(["GET", "POST"])
@member_required()
def verify_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The form (GET, ``?stream=<id>`` preselects one) and its report (POST)."""
    project = membership.project
    posted = request.method == "POST"
    initial = {"stream": request.GET.get("stream")} if request.GET.get("stream") else None
    form = VerifyForm(
        project,
        request.POST if posted else None,
        request.FILES if posted else None,
        initial=initial,
    )
    context: dict[str, Any] = {
        "membership": membership,
        "project": project,
        "form": form,
        "verifications": recent(membership),
    }
    if not posted:
        return render(request, "integrity.html", context)
    if not form.is_valid():
        return render(request, "integrity.html", context, status=400)
    stream = form.cleaned_data["stream"]
    upload = form.cleaned_data["digest"]
    try:
        if upload is not None:
            if stream is not None:
                raise ValueError(
                    "a digest covers whole streams of the project: choose every stream"
                )
            report = verify_digest(_read_digest(upload), project)
        else:
            report = integrity.verify(project, [stream] if stream is not None else None)
    except (ValueError, ContinustError) as err:
        form.add_error(None, str(err))
        return render(request, "integrity.html", context, status=400)
    context.update(
        report=report,
        scope=stream.name if stream is not None else f"every stream of {project.slug}",
        against_digest=upload is not None,
    )
    return render(request, "integrity.html", context)


@require_GET
@member_required()
def digest_download(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The project's digest now, as a file to keep and check against later."""
    document = take_digest(membership.project)
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=2), content_type="application/json"
    )
    stamp = document["taken_at"].replace(":", "").replace("-", "")[:15]
    response["Content-Disposition"] = (
        f'attachment; filename="{membership.project.slug}-digest-{stamp}.json"'
    )
    return response


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "integrity/", verify_page, name="integrity"),
    path(P + "integrity/digest.json", digest_download, name="digest"),
]

"""Blame: for a path of a version's state, the version that last changed it."""

from __future__ import annotations

from typing import Any

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from continust.audit.blame import blame
from continust.core.errors import ContinustError, InvalidName, StateReleased
from continust.documents import diff as diffs
from continust.log.subjects import readable_state
from continust.models import Membership, Stream, Version
from explorer.access import member_required
from explorer.jsontree import json_text

PATH_LIMIT = 500


# -- blame ---------------------------------------------------------------------------------


def _leaf_paths(document: Any, limit: int = PATH_LIMIT) -> list[str]:
    """Return the pointers of the document's scalar values (and empty containers)."""
    paths: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack and len(paths) < limit:
        path, node = stack.pop()
        items = (
            list(node.items())
            if isinstance(node, dict)
            else list(enumerate(node))
            if isinstance(node, list)
            else None
        )
        if not items:
            if path:
                paths.append(path)
            continue
        stack.extend((f"{path}/{diffs.escape_token(k)}", v) for k, v in reversed(items))
    return paths


@require_GET
@member_required()
def blame_view(
    request: HttpRequest, membership: Membership, stream: Stream, version_id: int
) -> HttpResponse:
    version = Version.objects.select_related("event").filter(stream=stream, pk=version_id).first()
    if version is None:
        raise Http404("No such version.")
    path = request.GET.get("path")
    context: dict[str, Any] = {
        "membership": membership,
        "project": membership.project,
        "stream": stream,
        "version": version,
        "path": path,
        "paths": _leaf_paths(readable_state(version)),
    }
    status = 200
    if path is not None:
        try:
            found = blame(stream, version, path)
            context["blame"] = found
            context["rows"] = [
                {"change": c, "value": json_text(c.value), "previous": json_text(c.previous)}
                for c in found.changes
            ]
        except ContinustError as err:
            context["error"] = str(err)
            status = (
                400
                if isinstance(err, InvalidName)
                else 410
                if isinstance(err, StateReleased)
                else 404
            )
    return render(request, "blame.html", context, status=status)


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/"
urlpatterns = [
    path(P + "s/<int:stream_id>/v/<int:version_id>/blame/", blame_view, name="blame"),
]

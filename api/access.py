"""What every operation starts with: the stream the token may read or write, and records.

Operations stay thin: find the stream through ``api.auth`` and
``continust.log.lookup``, call one domain function, shape the answer with
``continust.read.records``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.http import HttpRequest

from api.auth import check_writable, visible_project, writable_project
from api.lookup import recall
from api.models import ApiToken
from continust.core.errors import NotFound
from continust.core.parsing import parse_stream_name
from continust.graph.parents import parents_of_many
from continust.log.lookup import get_stream
from continust.models import Project, Stream, Version
from continust.read.records import version_record


def token_of(request: HttpRequest) -> ApiToken:
    """Return the token that authenticated the request."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return token


def project_for(request: HttpRequest, slug: str, *, write: bool = False, **needs: str) -> Project:
    """Return the project the request may read (or, with ``write``, write to; ``needs``
    is ``writable_project``'s role and what the write is doing)."""
    token = token_of(request)
    found = recall(request, slug)
    if found is None:
        if write:
            return writable_project(token, slug, **needs)
        return visible_project(token, slug)[0]
    if found.project is None or found.membership is None:
        raise NotFound(f"no project {slug!r}")
    if write:
        check_writable(token, found.project, found.membership, **needs)
    return found.project


def stream_for(
    request: HttpRequest, slug: str, name: str, *, write: bool = False, **needs: str
) -> Stream:
    """Return the stream the request may read (or, with ``write``, append to)."""
    project = project_for(request, slug, write=write, **needs)
    found = recall(request, slug)
    if found is None or found.name is None or found.name != name:
        return get_stream(project, name)
    if found.stream is None:
        raise NotFound(f"project {project.slug} has no stream {parse_stream_name(name)!r}")
    return found.stream


def version_records(
    stream: Stream, versions: Sequence[Version], known: Mapping[int, list[int]] | None = None
) -> list[dict[str, Any]]:
    """Return versions as records, loading their parents in one query, not one each
    (none when ``known`` gives every version's parents, as a linear append does)."""
    if known is not None and all(v.pk in known for v in versions):
        parents = dict(known)
    else:
        parents = parents_of_many(versions)
    records = []
    for version in versions:
        version.stream = stream
        records.append(version_record(version, parents=parents[version.pk]))
    return records

"""Finding things by the names users give them: slugs, stream names, version references.

Every name is read through ``continust.core.parsing`` first, so a name no record could
have is an ``InvalidName`` before any query, and an unknown one a ``NotFound``.
"""

from __future__ import annotations

import uuid

from continust.core.errors import InvalidName, NotFound
from continust.core.parsing import (
    parse_event_id,
    parse_search,
    parse_slug,
    parse_stream_name,
    parse_version_ref,
)
from continust.models import Branch, Event, Project, Stream, Version


def get_project(slug: str) -> Project:
    """Return the project with this slug."""
    slug = parse_slug(slug)
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist:
        raise NotFound(f"no project {slug!r}") from None


def get_stream(project: Project, name: str) -> Stream:
    """Return a stream of the project by name."""
    name = parse_stream_name(name)
    try:
        return Stream.objects.select_related("project").get(project=project, name=name)
    except Stream.DoesNotExist:
        raise NotFound(f"project {project.slug} has no stream {name!r}") from None


def resolve_version(stream: Stream, ref: str | int) -> Version:
    """Return the version a reference names: a branch name, an external key or an id.

    A branch name wins over a key, and a key over an id, so ``main`` always means
    the branch and a numeric git key still finds its commit.
    """
    parsed = parse_version_ref(ref)
    text = parsed.text
    versions = Version.objects.select_related("event").filter(stream=stream)
    branch = Branch.objects.filter(stream=stream, name=text).select_related("head").first()
    if branch is not None:
        return versions.get(pk=branch.head_id)
    by_key = versions.filter(key=text).first()
    if by_key is not None:
        return by_key
    if parsed.number is not None:
        by_id = versions.filter(pk=parsed.number).first()
        if by_id is not None:
            return by_id
    raise NotFound(f"stream {stream.name} has no version, branch or key {text!r}")


def find_version(stream: Stream, query: str) -> Version:
    """Return the version a search names: a reference, or the id of the event that made it."""
    text = parse_search(query)
    if not text:
        raise NotFound(f"name a version of {stream.name} to find it")
    try:
        return resolve_version(stream, text)
    except (NotFound, InvalidName):
        try:
            event_id = parse_event_id(text)
        except InvalidName:
            raise NotFound(f"nothing in {stream.name} is called {text!r}") from None
    found = Version.objects.filter(stream=stream, event__id=event_id).order_by("id").first()
    if found is None:
        raise NotFound(f"nothing in {stream.name} is called {text!r}")
    return found


def get_event(project: Project, event_id: str | uuid.UUID) -> Event:
    """Return an event of the project by its UUID."""
    key = parse_event_id(event_id)
    try:
        return Event.objects.select_related("stream").get(project=project, id=key)
    except Event.DoesNotExist:
        raise NotFound(f"project {project.slug} has no event {key}") from None

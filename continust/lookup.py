"""Finding things by the names users give them: slugs, stream names, version references."""

from __future__ import annotations

import uuid

from continust.errors import NotFound
from continust.models import Branch, Event, Project, Stream, Version


def get_project(slug: str) -> Project:
    """Return the project with this slug."""
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist:
        raise NotFound(f"no project {slug!r}") from None


def get_stream(project: Project, name: str) -> Stream:
    """Return a stream of the project by name."""
    try:
        return Stream.objects.select_related("project").get(project=project, name=name)
    except Stream.DoesNotExist:
        raise NotFound(f"project {project.slug} has no stream {name!r}") from None


def resolve_version(stream: Stream, ref: str | int) -> Version:
    """Return the version a reference names: a branch name, an external key or an id.

    A branch name wins over a key, and a key over an id, so ``main`` always means
    the branch and a numeric git key still finds its commit.
    """
    text = str(ref).strip()
    versions = Version.objects.select_related("event").filter(stream=stream)
    branch = Branch.objects.filter(stream=stream, name=text).select_related("head").first()
    if branch is not None:
        return versions.get(pk=branch.head_id)
    by_key = versions.filter(key=text).first()
    if by_key is not None:
        return by_key
    number = text[1:] if text[:1] in {"v", "V"} else text
    if number.isdigit():
        by_id = versions.filter(pk=int(number)).first()
        if by_id is not None:
            return by_id
    raise NotFound(f"stream {stream.name} has no version, branch or key {text!r}")


def get_event(project: Project, event_id: str | uuid.UUID) -> Event:
    """Return an event of the project by its UUID."""
    try:
        key = uuid.UUID(str(event_id))
    except ValueError:
        raise NotFound(f"{event_id!r} is not an event id") from None
    try:
        return Event.objects.select_related("stream").get(project=project, id=key)
    except Event.DoesNotExist:
        raise NotFound(f"project {project.slug} has no event {key}") from None

"""Finding things by the names users give them: slugs, stream names, version references.

Every name is read through ``continust.core.parsing`` first, so a name no record could
have is an ``InvalidName`` before any query, and an unknown one a ``NotFound``.
"""

from __future__ import annotations

import uuid

from continust.core.errors import BadRevision, InvalidName, NotFound
from continust.core.parsing import (
    Revision,
    VersionRef,
    parse_event_id,
    parse_revision,
    parse_revision_range,
    parse_search,
    parse_slug,
    parse_stream_name,
    parse_version_ref,
)
from continust.graph.cache import graph_for
from continust.models import Branch, Event, Project, Stream, Tag, Version


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
    """Return the version a revision names, as git users type it.

    A name is a branch, a tag, an external key or an id (``12`` or ``v12``), tried in
    that order, so ``main`` always means the branch and a numeric git key still finds
    its commit. A name may end in steps: ``~n`` walks n first parents back (``main~3``),
    ``^n`` takes the n-th parent (``v120^2``, a merge's second parent). A whole text
    that names something wins over reading it as steps, so a branch called ``a~1``
    stays reachable. A plain unknown name is a ``NotFound``; a revision whose name is
    unknown or whose walk leaves the graph is a ``BadRevision`` naming what did not
    resolve.
    """
    parsed = parse_version_ref(ref)
    found = _named(stream, parsed)
    if found is not None:
        return found
    if not _revision_like(parsed.text):
        raise NotFound(f"stream {stream.name} has no version, branch, tag or key {parsed.text!r}")
    revision = parse_revision(parsed.text)
    base = _named(stream, revision.base)
    if base is None:
        raise BadRevision(
            f"revision {revision.text!r}: stream {stream.name} has no version, branch, tag or "
            f"key {revision.base.text!r}"
        )
    return _walked(stream, revision, base)


def _revision_like(text: str) -> bool:
    return any(mark in text for mark in ("~", "^", ".."))


def _named(stream: Stream, ref: VersionRef) -> Version | None:
    """The version a plain name names: a branch, a tag, a key or an id, in that order."""
    text = ref.text
    versions = Version.objects.select_related("event").filter(stream=stream)
    branch = Branch.objects.filter(stream=stream, name=text).first()
    if branch is not None:
        return versions.get(pk=branch.head_id)
    tag = Tag.objects.filter(stream=stream, name=text).first()
    if tag is not None:
        return versions.get(pk=tag.version_id)
    by_key = versions.filter(key=text).first()
    if by_key is not None:
        return by_key
    if ref.number is not None:
        return versions.filter(pk=ref.number).first()
    return None


def _walked(stream: Stream, revision: Revision, base: Version) -> Version:
    """Walk a revision's steps from its base over the stream's graph."""
    graph = graph_for(stream)
    node = base.pk
    walked = revision.base.text
    for step in revision.steps:
        if step.kind == "~":
            for done in range(step.count):
                parents = graph.parents(node)
                if not parents:
                    raise BadRevision(
                        f"revision {revision.text!r}: {walked}~{step.count} walks past the "
                        f"root (v{node} is the root, {done} step(s) back)"
                    )
                node = parents[0]
        elif step.count:
            parents = graph.parents(node)
            if step.count > len(parents):
                has = f"{len(parents)} parent" + ("" if len(parents) == 1 else "s")
                raise BadRevision(
                    f"revision {revision.text!r}: {walked}^{step.count} is no version: "
                    f"v{node} has {has}"
                )
            node = parents[step.count - 1]
        walked = f"{walked}{step}"
    if node == base.pk:
        return base
    return Version.objects.select_related("event").get(stream=stream, pk=node)


def resolve_range(stream: Stream, text: str) -> tuple[Version, Version]:
    """Return the two versions a range ``A..B`` names: in a list, the versions B reaches
    and A does not; in a diff, from A to B."""
    start, end = parse_revision_range(text)
    return _end_of(stream, start, text), _end_of(stream, end, text)


def _end_of(stream: Stream, ref: str, whole: str) -> Version:
    try:
        return resolve_version(stream, ref)
    except BadRevision:
        raise
    except NotFound as err:
        raise BadRevision(f"range {whole!r}: {err}") from None


def find_version(stream: Stream, query: str) -> Version:
    """Return the version a search names: a revision, or the id of the event that made it."""
    text = parse_search(query)
    if not text:
        raise NotFound(f"name a version of {stream.name} to find it")
    try:
        return resolve_version(stream, text)
    except BadRevision:
        raise  # an event id has no ~, ^ or ..: the revision's own error says most
    except (NotFound, InvalidName):
        pass
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

"""Tags: immutable names for versions, unique in their stream, recorded in the audit trail.

A tag is made once and never moves: there is no function here that moves or deletes
one, the ORM refuses both and the database refuses an UPDATE. Each tag is also a
``tag.created`` event of the project's audit stream, saying who tagged which version
(by id and digest) and when; the tag row points at that event.
"""

from __future__ import annotations

from typing import Final

from django.db import IntegrityError, transaction

from continust.audit import trail
from continust.core.errors import AlreadyExists, NotFound
from continust.core.parsing import parse_tag_name
from continust.models import Branch, Stream, Tag, Version

TAG_CREATED: Final = "tag.created"


class TagExists(AlreadyExists):
    """A tag name already taken in the stream (tags never move, so it cannot be reused)."""


def create_tag(stream: Stream, name: str, version: Version, *, actor: str = "") -> Tag:
    """Name a version of the stream for ever, and record who did it in the audit trail."""
    name = parse_tag_name(name)
    if version.stream_id != stream.pk:
        raise NotFound(f"version {version.pk} is not in stream {stream.name}")
    if Branch.objects.filter(stream=stream, name=name).exists():
        raise TagExists(
            f"stream {stream.name} has a branch {name!r}; a tag needs a name no branch has"
        )
    taken = Tag.objects.filter(stream=stream, name=name).first()
    if taken is not None:
        raise TagExists(
            f"stream {stream.name} already has a tag {name!r} (on v{taken.version_id}); "
            "tags never move"
        )
    try:
        with transaction.atomic():
            event = trail.record(
                stream.project,
                TAG_CREATED,
                {
                    "stream": stream.name,
                    "tag": name,
                    "version": version.pk,
                    "digest": version.digest,
                },
                actor=actor,
            )
            return Tag.objects.create(
                stream=stream, name=name, version=version, actor=actor, event=event
            )
    except IntegrityError as err:
        raise TagExists(f"stream {stream.name} already has a tag {name!r}") from err


def tags_of(stream: Stream) -> list[Tag]:
    """Return the stream's tags by name."""
    return list(Tag.objects.filter(stream=stream).order_by("name"))


def tags_by_version(stream: Stream, version_ids: list[int]) -> dict[int, list[str]]:
    """Return the names of the tags on each of these versions (those with any)."""
    found: dict[int, list[str]] = {}
    rows = (
        Tag.objects.filter(stream=stream, version_id__in=version_ids)
        .order_by("name")
        .values_list("version_id", "name")
    )
    for version_id, name in rows:
        found.setdefault(version_id, []).append(name)
    return found

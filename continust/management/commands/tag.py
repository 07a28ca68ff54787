"""tag --stream S NAME V: name a version for ever; tag --stream S (--list): the tags."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.audit.tags import create_tag, tags_of
from continust.log.lookup import resolve_version
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Tag a version (tag NAME REVISION): an immutable name, unique in the stream, "
        "recorded in the project's audit stream. Without a name, list the stream's tags."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", nargs="?", help="the new tag's name")
        parser.add_argument("version", nargs="?", help="the revision to tag (main, v12, main~3)")
        parser.add_argument("--actor", default="", help="who tags it (recorded)")
        parser.add_argument("--list", action="store_true", help="list the tags (the default)")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        if options["name"] is None or options["list"]:
            if options["name"] is not None:
                raise CommandError("tag --list takes no name; tag NAME REVISION creates one")
            tags = tags_of(stream)
            self.emit(
                options,
                [_record(t) for t in tags],
                "\n".join(
                    f"{t.name}\tv{t.version_id}\t{t.actor}\t{t.created_at:%Y-%m-%d %H:%M}"
                    for t in tags
                )
                or "no tags",
            )
            return
        if options["version"] is None:
            raise CommandError("tag NAME REVISION: name the version to tag")
        version = resolve_version(stream, options["version"])
        tag = create_tag(stream, options["name"], version, actor=options["actor"])
        self.emit(options, _record(tag), f"tagged v{tag.version_id} {tag.name}")


def _record(tag: Any) -> dict[str, Any]:
    return {
        "name": tag.name,
        "version": tag.version_id,
        "actor": tag.actor,
        "created_at": tag.created_at.isoformat(),
        "event": str(tag.event.id),
    }

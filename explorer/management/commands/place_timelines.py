"""place_timelines [--project P]: place every stream's versions on the timeline now.

The explorer places new versions when a page opens (a step at a time) and in the
background; after seeding or importing a long history, this places it at once, so the
first look at a stream starts at its head.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.log.lookup import get_project
from continust.management.base import ContinustCommand, Scope
from continust.models import Stream
from explorer.placement import place_new_versions


class Command(ContinustCommand):
    help = "Place every stream's versions on the explorer's timeline now (or one project's)."
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--project", help="only this project's streams (its slug)")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        streams = Stream.objects.order_by("pk")
        if options["project"]:
            streams = streams.filter(project=get_project(options["project"]))
        placed = {stream.name: place_new_versions(stream).rows for stream in streams}
        self.emit(
            options,
            placed,
            f"placed {len(placed)} stream(s), {sum(placed.values()):,} version(s) on the timeline",
        )

"""fork --stream S --at VERSION --name BRANCH: a new branch at any version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.log.lookup import resolve_version
from continust.log.store import fork
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Fork a branch at a version (an id, a key or another branch)."
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--at", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--actor", default="")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        at = resolve_version(stream, options["at"])
        branch = fork(stream, options["name"], at, actor=options["actor"])
        self.emit(
            options,
            {"branch": branch.name, "head": at.pk},
            f"forked {branch.name} at version {at.pk}",
        )

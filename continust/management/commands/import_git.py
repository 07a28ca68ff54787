"""import_git PATH --project P --stream S: one version per commit reachable from any ref."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.interchange.gitimport import import_git
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Import a git repository's history as a stream; a re-run adds only new commits."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("path")
        parser.add_argument("--stream", required=True)

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        result = import_git(project, options["path"], options["stream"])
        self.emit(
            options,
            result.__dict__,
            f"imported {result.commits} commits, moved {result.branches} branches",
        )

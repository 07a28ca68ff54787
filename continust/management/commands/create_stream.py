"""create_stream --project P --stream S [--reducer R]: a new stream."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.log.projects import create_stream
from continust.management.base import ContinustCommand, Scope, number


class Command(ContinustCommand):
    help = "Create a stream folded by a registered reducer (merge, patch, replace, ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--stream", required=True)
        parser.add_argument("--reducer", default="merge")
        parser.add_argument("--reducer-version", type=number)

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        created = create_stream(
            project,
            options["stream"],
            reducer=options["reducer"],
            reducer_version=options["reducer_version"],
        )
        self.emit(
            options,
            {
                "stream": created.name,
                "reducer": created.reducer,
                "reducer_version": created.reducer_version,
            },
            f"created stream {created.name} ({created.reducer}@{created.reducer_version})",
        )

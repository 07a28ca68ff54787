"""export_jsonl --project P [--stream S ...] [--output FILE] [--reveal]: streams as JSON
Lines."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandParser

from continust.interchange.jsonl import export_lines
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Export a project's streams (events, versions, branches) as JSON Lines."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--stream", action="append", dest="streams")
        parser.add_argument("--output", "-o", help="a file (default: standard output)")
        parser.add_argument(
            "--reveal",
            action="store_true",
            help="write personal values as readers see them (plain, or [erased]); "
            "such a file no longer matches the events' hashes and does not import",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        lines = export_lines(project, options["streams"], reveal=options["reveal"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.writelines(lines)
        else:
            target = self.stdout if self.stdout is not None else sys.stdout
            for line in lines:
                target.write(line, ending="")

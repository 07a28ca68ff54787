"""import_jsonl FILE --project P: JSON Lines from export_jsonl; all of it or nothing."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.interchange.jsonl import import_lines
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Import JSON Lines written by export_jsonl ('-' reads standard input)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        try:
            if options["file"] == "-":
                result = import_lines(project, sys.stdin)
            else:
                with open(options["file"], encoding="utf-8") as handle:
                    result = import_lines(project, handle)
        except OSError as err:
            raise CommandError(f"cannot read {options['file']}: {err.strerror}") from err
        self.emit(options, dict(result.__dict__), result.summary())

"""state --stream S VERSION: a version's state as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from continust.log.lookup import resolve_version
from continust.log.states import state_of
from continust.management.base import ContinustCommand, Scope
from continust.read.records import version_record


class Command(ContinustCommand):
    help = "Print a version's state (and with --json, the version's record too)."
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "version",
            help="a revision: an id, a key, a branch or a tag, with ~n or ^n steps (main~3, v12^2)",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        version = resolve_version(stream, options["version"])
        state = state_of(version)
        self.emit(
            options,
            {"version": version_record(version), "state": state},
            json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True),
        )

"""digest [--project P] [-o FILE]: a small JSON document a later verify --digest checks."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from continust.audit.digests import take_digest
from continust.log.lookup import get_project
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Write a digest of the log: per stream its head hash, event count and branch "
        "heads, one root over them, and the time. Keep it elsewhere; "
        "`verify --digest FILE` later proves the log still extends it."
    )
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--project", help="only this project (default: every project)")
        parser.add_argument("--output", "-o", help="a file (default: standard output)")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = get_project(options["project"]) if options["project"] else None
        text = json.dumps(take_digest(project), ensure_ascii=False, indent=1) + "\n"
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.write(text)
        else:
            self.stdout.write(text, ending="")

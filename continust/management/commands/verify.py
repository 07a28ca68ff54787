"""verify [--project P]: recompute hash chains and states; exit 1 at the first broken link."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.integrity import verify
from continust.lookup import get_project, get_stream
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Verify hash chains, states and version digests; exit 1 naming the first broken link."
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--project", help="only this project (default: every project)")
        parser.add_argument("--stream", help="only this stream of the project")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        if options["stream"] and not options["project"]:
            raise CommandError("--stream needs --project")
        scope = get_project(options["project"]) if options["project"] else None
        streams = [get_stream(scope, options["stream"])] if options["stream"] and scope else None
        report = verify(scope, streams)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        elif report.ok:
            self.stdout.write(
                f"ok: {report.streams} streams, {report.events} events, "
                f"{report.versions} versions verified"
            )
            for label, head in report.heads.items():
                self.stdout.write(f"  {label} head {head}")
        if not report.ok:
            raise CommandError(f"broken: {report.broken}", returncode=1)

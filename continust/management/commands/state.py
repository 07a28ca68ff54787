"""state --stream S VERSION: a version's state as JSON; or a branch's state as of a moment
(--as-of, on --clock recorded|event) or a log position (--as-of-position); without --stream,
with --as-of-position, every stream's state then, causally consistent."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.core.parsing import parse_timestamp
from continust.log.lookup import get_stream, resolve_version
from continust.log.subjects import readable_state
from continust.management.base import ContinustCommand, Scope
from continust.read.as_of import AsOf, Clock, head_as_of, project_as_of
from continust.read.project_log import LogPosition
from continust.read.records import version_record


class Command(ContinustCommand):
    help = (
        "Print a version's state (and with --json, the version's record too); with --as-of "
        "or --as-of-position, the state a branch had then; with --as-of-position and no "
        "--stream, every stream's (causally consistent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--stream", default=None, help="the stream's name")
        parser.add_argument(
            "version",
            nargs="?",
            default=None,
            help="a revision: an id, a key, a branch or a tag, with ~n or ^n steps (main~3, v12^2)",
        )
        parser.add_argument(
            "--as-of", default=None, help="a moment, RFC 3339 (2026-01-05T12:00Z); on --clock"
        )
        parser.add_argument(
            "--clock",
            choices=[c.value for c in Clock],
            default=Clock.RECORDED.value,
            help="recorded: when the log recorded each move of the branch (the version's "
            "created_at, the default); event: the timestamp of the event that made each head",
        )
        parser.add_argument("--as-of-position", default=None, help="a log position T.P")
        parser.add_argument("--branch", default="main", help="with --as-of*: the branch")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        when = self._when(options)
        if options["stream"] is None:
            if when is None or when.position is None:
                raise CommandError("name a --stream, or give --as-of-position for every stream")
            self._project(project, when.position, options)
            return
        stream = get_stream(project, options["stream"])
        if when is None:
            if options["version"] is None:
                raise CommandError("name a version (an id, a key or a branch), or give --as-of")
            version = resolve_version(stream, options["version"])
        else:
            if options["version"] is not None:
                raise CommandError(
                    "give a version or --as-of, not both (--branch names the branch)"
                )
            found = head_as_of(stream, options["branch"], when)
            if found is None:
                raise CommandError(
                    f"branch {options['branch']!r} of {stream.name!r} had no version as of "
                    f"{when.describe()}"
                )
            version = found
        state = readable_state(version)
        self.emit(
            options,
            {"version": version_record(version), "state": state},
            json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True),
        )

    def _when(self, options: dict[str, Any]) -> AsOf | None:
        if options["as_of"] is not None and options["as_of_position"] is not None:
            raise CommandError("give --as-of or --as-of-position, not both")
        if options["as_of_position"] is not None:
            return AsOf(position=LogPosition.parse(options["as_of_position"]))
        if options["as_of"] is not None:
            return AsOf(moment=parse_timestamp(options["as_of"]), clock=Clock(options["clock"]))
        return None

    def _project(self, project: Any, at: LogPosition, options: dict[str, Any]) -> None:
        found = project_as_of(project, at, branch=options["branch"])
        states = {f.stream.name: readable_state(f.version) for f in found if f.version is not None}
        data = {
            "as_of_position": str(at),
            "branch": options["branch"],
            "streams": [
                {
                    "stream": f.stream.name,
                    "included_to": str(f.bound),
                    "version": version_record(f.version) if f.version is not None else None,
                    "state": states.get(f.stream.name),
                }
                for f in found
            ],
        }
        self.emit(options, data, json.dumps(states, indent=2, ensure_ascii=False, sort_keys=True))

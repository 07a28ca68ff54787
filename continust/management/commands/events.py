"""events --project P [--after POS] [--type T] [--stream S] [--follow]: the project's log
in order ($all) as JSON Lines, each event with its log position."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import CommandParser

from continust.core.parsing import parse_timestamp
from continust.log.lookup import get_stream
from continust.management.base import ContinustCommand, Scope, number
from continust.read.feed import entry_record
from continust.read.project_log import PAGE_MAX, LogFilter, LogPosition, read_log
from continust.read.wakeups import LogWakeups
from continust.schemas.registry import registry_of


class Command(ContinustCommand):
    help = (
        "Print the project's events in log order as JSON Lines (each with its log_position); "
        "--follow keeps printing them as they are appended, each once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--after", default="0", help="a log position T.P (0: the start)")
        parser.add_argument("--stream", default="", help="only this stream's events")
        parser.add_argument("--type", default="", help="only event types starting with this")
        parser.add_argument("--actor", default="", help="only this actor's events")
        parser.add_argument("--since", default=None, help="event time, RFC 3339, inclusive")
        parser.add_argument("--until", default=None, help="event time, RFC 3339, exclusive")
        parser.add_argument("--limit", type=number, default=None, help="stop after this many")
        parser.add_argument(
            "--follow", action="store_true", help="wait for new events (Ctrl-C to stop)"
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            help="with --follow: stop after this many seconds without a new event",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        if options["stream"]:
            get_stream(project, options["stream"])  # an unknown stream is an error
        where = LogFilter(
            stream=options["stream"],
            type_prefix=options["type"],
            actor=options["actor"],
            since=parse_timestamp(options["since"]) if options["since"] else None,
            until=parse_timestamp(options["until"]) if options["until"] else None,
        )
        after = LogPosition.parse(options["after"])
        left = options["limit"]
        quiet = options["wait"]
        registry = registry_of(project)
        with LogWakeups() as wakeups:
            quiet_since = time.monotonic()
            while left is None or left > 0:
                size = PAGE_MAX if left is None else min(left, PAGE_MAX)
                page = read_log(project, after, limit=size, where=where)
                for entry in page.entries:
                    line = json.dumps(
                        entry_record(entry, registry), ensure_ascii=False, sort_keys=True
                    )
                    self.stdout.write(line)
                    quiet_since = time.monotonic()
                self.stdout.flush()
                after = page.next
                if left is not None:
                    left -= len(page.entries)
                if not page.caught_up:
                    continue
                if not options["follow"]:
                    return
                waited = time.monotonic() - quiet_since
                if quiet is not None and waited >= quiet:
                    return
                wakeups.wait(30.0 if quiet is None else quiet - waited)

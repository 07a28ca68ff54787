"""windows --spec JSON: window JSON Lines events from stdin into JSON Lines results on stdout.

Each input line is one event ``{"key", "ts", "value"}`` (``ts`` in milliseconds,
``value`` a number); blank lines are skipped. Each output line is a window result
``{"key", "start", "end", "max_ts", "fire", "count", "sum", "min", "max"}`` or a
late event ``{"late": true, "key", "ts", "value"}``, in the order they are emitted.
The semantics are Apache Flink's, written out in ``docs/windows.md``; the operator
is ``continust.pipelines.windows``'s.

A bad spec stops the command before it reads anything; a bad line stops it with a
one-line error naming the line (the results of the lines before it were already
written, as from any filter).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from continust.management.base import ContinustCommand, Scope, number, parse_json
from continust.pipelines.windows import run_windows, spec_from_json

_EVENT_INDEX = re.compile(r"^event \d+: ")


class _Lines:
    """JSON objects from a text stream, remembering the number of the line read last."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.line = 0

    def __iter__(self) -> Iterator[Any]:
        for text in self.stream:
            self.line += 1
            if not text.strip():
                continue
            try:
                yield json.loads(text)
            except json.JSONDecodeError as err:
                raise CommandError(f"line {self.line}: not JSON: {err.msg}") from err


class Command(ContinustCommand):
    help = (
        'Window {"key","ts","value"} JSON Lines from stdin by event time (tumbling, sliding '
        "or session) and write window results and late events as JSON Lines."
    )
    needs_project = False
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--spec",
            required=True,
            help='e.g. {"type": "tumbling", "size_ms": 60000, "out_of_orderness_ms": 5000}',
        )
        parser.add_argument(
            "--batch-size",
            type=number,
            default=1024,
            help="events handled at a time (1 answers each line at once; default 1024)",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        raw = parse_json(options["spec"], "--spec")
        try:
            spec = spec_from_json(raw)
        except ValueError as err:
            raise CommandError(f"bad window spec: {err}") from err
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        lines = _Lines(options.get("stdin") or sys.stdin)
        out = self.stdout
        try:
            for record in run_windows(spec, lines, batch_size=options["batch_size"]):
                out.write(json.dumps(record, ensure_ascii=False))
        except ValueError as err:
            raise CommandError(f"line {lines.line}: {_EVENT_INDEX.sub('', str(err))}") from err

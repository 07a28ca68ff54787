"""bisect --stream S --good V --bad V [--skip V] (--run EXPR | --pointer P --expect JSON)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.log.lookup import resolve_version
from continust.management.base import ContinustCommand, Scope, parse_json
from continust.read.bisect import PointerEquals, PythonPredicate, StateProperty, bisect_stream


class Command(ContinustCommand):
    help = (
        "Find the first version where a property of the state broke, as git bisect does: "
        "among the versions --bad reaches and no --good reaches, in O(log n) state reads. "
        "The property is a Python expression over `state` (--run) or a JSON Pointer with "
        "the value expected there (--pointer, --expect)."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--good", action="append", required=True, help="a revision where it holds (repeatable)"
        )
        parser.add_argument("--bad", required=True, help="a revision where it does not hold")
        parser.add_argument(
            "--skip",
            action="append",
            default=[],
            help="a revision not to test (repeatable); versions whose state compaction "
            "released are skipped without asking",
        )
        parser.add_argument("--run", help="a Python expression over state: \"state['a'] > 0\"")
        parser.add_argument("--pointer", help="a JSON Pointer into the state: /a/b")
        parser.add_argument("--expect", help="the JSON value expected at --pointer")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        prop: StateProperty
        if options["run"] is not None:
            if options["pointer"] is not None or options["expect"] is not None:
                raise CommandError("give --run, or --pointer with --expect, not both")
            prop = PythonPredicate(options["run"])
        elif options["pointer"] is not None and options["expect"] is not None:
            prop = PointerEquals(options["pointer"], parse_json(options["expect"], "--expect"))
        else:
            raise CommandError("say what should hold: --run EXPR, or --pointer P --expect JSON")
        good = [resolve_version(stream, ref) for ref in options["good"]]
        bad = resolve_version(stream, options["bad"])
        skip = [resolve_version(stream, ref) for ref in options["skip"]]
        result = bisect_stream(stream, good, bad, prop, skip)
        self.emit(options, result.as_dict(), result.summary())

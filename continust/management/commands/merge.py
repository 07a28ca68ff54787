"""merge --stream S --from B --into B [--resolve PATH=JSON ...]: a three-way merge."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.core.errors import MergeConflict
from continust.log.store import merge
from continust.management.base import ContinustCommand, Scope, parse_json
from continust.read.records import version_record


class Command(ContinustCommand):
    help = "Merge one branch into another; conflicts are listed and nothing is written."
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--from", dest="source", required=True)
        parser.add_argument("--into", required=True)
        parser.add_argument("--actor", default="")
        parser.add_argument(
            "--resolve",
            action="append",
            default=[],
            metavar="PATH=JSON",
            help="the value to keep at a conflicting path, e.g. /price=12",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        resolutions = {}
        for item in options["resolve"]:
            path, sep, raw = item.partition("=")
            if not sep:
                raise CommandError(f"--resolve {item!r} is not PATH=JSON")
            resolutions[path] = parse_json(raw, f"--resolve {path}")
        try:
            version = merge(
                stream,
                options["source"],
                options["into"],
                actor=options["actor"],
                resolutions=resolutions,
            )
        except MergeConflict as err:
            lines = [
                f"  {c.path}: base={c.base!r} ours={c.ours!r} theirs={c.theirs!r}"
                for c in err.conflicts
            ]
            raise CommandError(str(err) + "\n" + "\n".join(lines)) from err
        self.emit(
            options,
            version_record(version),
            f"merged {options['source']} into {options['into']}: version {version.pk}",
        )

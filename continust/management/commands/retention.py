"""retention: show a stream's retention policy, or set it.

retention --project P --stream S [show]
retention --project P --stream S set eternal
retention --project P --stream S set selective [--every N]
retention --project P --stream S set ephemeral [--horizon-versions N] [--horizon-age AGE]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.log.policy import Policy, make_policy, unused_settings
from continust.management.base import ContinustCommand, Scope, number
from continust.models import Retention, Stream
from continust.read.records import retention_record
from continust.retention.policies import set_policy

# Each setting of a policy as this command takes it: its option and its flag.
OPTIONS = {
    "snapshot_every": ("every", "--every"),
    "horizon_versions": ("horizon_versions", "--horizon-versions"),
    "horizon_age": ("horizon_age", "--horizon-age"),
}


class Command(ContinustCommand):
    help = (
        "Show a stream's retention policy and the bytes it takes, or set the policy "
        "(recorded in the project's audit stream; compact applies it to what is stored)."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "action",
            nargs="?",
            choices=("show", "set"),
            default="show",
            help="show the policy (default) or set it",
        )
        parser.add_argument("kind", nargs="?", help="with set: " + ", ".join(Retention.values))
        parser.add_argument(
            "--every",
            type=number,
            metavar="N",
            help="selective: store a state every N generations (default 100)",
        )
        parser.add_argument(
            "--horizon-versions",
            type=number,
            metavar="N",
            help="ephemeral: keep the newest N versions",
        )
        parser.add_argument(
            "--horizon-age",
            metavar="AGE",
            help="ephemeral: keep versions younger than AGE (90d, 12h, 30m, 2w or seconds)",
        )
        parser.add_argument("--actor", default="", help="who sets it (for the audit stream)")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        if options["action"] == "show":
            given = [flag for key, flag in OPTIONS.values() if options[key] is not None]
            if options["kind"] or given:
                raise CommandError(
                    "a kind and "
                    + ", ".join(f for _, f in OPTIONS.values())
                    + " go with set, not show"
                )
            self._print(options, stream, "")
            return
        policy = _policy(options)
        set_policy(stream, policy, actor=options["actor"])
        self._print(options, stream, "now ")

    def _print(self, options: dict[str, Any], stream: Stream, now: str) -> None:
        data = retention_record(stream)
        size = data["footprint"]
        self.emit(
            options,
            data,
            f"{stream.name}: {now}{data['description']}\n"
            f"footprint: {size['total']} bytes (events {size['events']}, versions "
            f"{size['versions']}, states {size['states']})",
        )


def _policy(options: dict[str, Any]) -> Policy:
    kind = options["kind"]
    if not kind:
        raise CommandError("set needs a kind: " + ", ".join(Retention.values))
    unused = unused_settings(
        kind, [name for name, (key, _) in OPTIONS.items() if options[key] is not None]
    )
    if unused:
        flags = [flag for name, (_, flag) in OPTIONS.items() if name in unused]
        raise CommandError(f"{kind} policies take no {', '.join(flags)}")
    return make_policy(
        kind,
        snapshot_every=options["every"],
        horizon_versions=options["horizon_versions"],
        horizon_age=options["horizon_age"],
    )

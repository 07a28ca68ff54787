"""revert --stream S V [--branch B] [--dry-run]: append the event that undoes a version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.documents.diff import format_changes
from continust.log.lookup import resolve_version
from continust.log.revert import append_revert, plan_revert
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Revert a version: append to the branch (the version's own by default) one event "
        "that undoes what the version changed, caused by the version's event. Refused when "
        "later versions changed the same paths. --dry-run prints what it would append."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("version", help="the revision to revert (v12, main~2, a tag)")
        parser.add_argument("--branch", help="the branch to append to")
        parser.add_argument("--actor", default="", help="who reverts it (recorded)")
        parser.add_argument("--dry-run", action="store_true", help="print the plan only")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        version = resolve_version(stream, options["version"])
        plan = plan_revert(stream, version, options["branch"])
        summary = plan.as_dict()
        if options["dry_run"]:
            self.emit(
                options,
                summary,
                f"would append {plan.event_type} to {plan.branch} after v{plan.head}:\n"
                + format_changes(plan.shown_changes()),
            )
            return
        made = append_revert(stream, plan, actor=options["actor"]).versions[0]
        self.emit(
            options,
            {**summary, "version": made.pk},
            f"v{made.pk} on {plan.branch} reverts v{version.pk}:\n"
            + format_changes(plan.shown_changes()),
        )

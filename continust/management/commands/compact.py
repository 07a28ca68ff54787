"""compact: apply a stream's retention policy to what it stores, or show what that would do.

compact --project P --stream S --dry-run
compact --project P --stream S [--wait] [--actor A]
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.management.base import ContinustCommand, Scope
from continust.models import Compaction, CompactionStatus
from continust.read.records import compaction_record
from continust.retention import compaction

POLL_SECONDS = 0.5


class Command(ContinustCommand):
    help = (
        "Compact a stream under its retention policy (a Celery worker runs it; --wait "
        "runs it here), or print the plan with --dry-run."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--dry-run",
            action="store_true",
            help="print what a compaction would store, drop and release; change nothing",
        )
        mode.add_argument(
            "--wait",
            action="store_true",
            help="run the compaction in this process and print its result",
        )
        parser.add_argument("--actor", default="", help="who asks for it")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        if options["dry_run"]:
            plan = compaction.plan(stream).as_dict()
            self.emit(options, plan, _plan_text(plan))
            return
        found = compaction.request(stream, actor=options["actor"])
        if not options["wait"]:
            self.emit(
                options,
                compaction_record(found),
                f"compaction {found.pk} of {stream.name} {found.status}; a worker runs it",
            )
            return
        found = _finish(found)
        self.emit(options, compaction_record(found), _outcome(found))
        if found.status != CompactionStatus.DONE:
            raise CommandError(_outcome(found))


def _finish(found: Compaction) -> Compaction:
    """Run the compaction here; while another process holds it, wait for that one."""
    while True:
        found = compaction.run(found.pk)
        if found.status not in compaction.ACTIVE:
            return found
        time.sleep(POLL_SECONDS)


def _outcome(found: Compaction) -> str:
    if found.status == CompactionStatus.FAILED:
        return f"compaction {found.pk} failed: {found.error}"
    return (
        f"compaction {found.pk} {found.status}: {found.versions_released} versions "
        f"released in {found.runs} runs, {found.states_released} states released, "
        f"{found.snapshots_stored} snapshots stored; {found.bytes_before} -> "
        f"{found.bytes_after} bytes"
    )


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [
        f"{plan['stream']} ({plan['policy']['kind']}), up to version {plan['upto']}"
        + (f", versions made before {plan['cutoff']}" if plan["cutoff"] else "")
        + ":",
        f"  would store {plan['snapshots_stored']} snapshots, drop {plan['states_dropped']} "
        f"states, release {plan['versions_released']} versions in {plan['runs_total']} runs "
        f"(about {plan['bytes_released']} bytes)",
    ]
    if plan.get("bytes_uncounted"):
        lines.append(f"  ({plan['bytes_uncounted']})")
    lines += [
        f"  release {r['first']}..{r['last']} ({r['versions']} "
        f"version{'' if r['versions'] == 1 else 's'})"
        for r in plan["runs"]
    ]
    lines += [f"  keep {p['version']}: {p['reason']}" for p in plan["protected"]]
    hidden = (
        plan["runs_total"] - len(plan["runs"]) + plan["protected_total"] - len(plan["protected"])
    )
    if hidden:
        lines.append(f"  ... and {hidden} more not listed")
    return "\n".join(lines)

"""projection list|run|rebuild --project P: a project's projections, their lag, and control.

``list`` shows every registered projection of the project: status, log position, events
behind the log's end, rate and last error. ``run NAME`` runs it here until it has caught
up (the same lease a worker takes, so never beside one; a failed one resumes at the
batch that failed); ``--follow`` keeps it following the log, woken by appends, until
Ctrl-C. ``rebuild NAME`` fills fresh tables from position 0 and swaps them in
once caught up: it names the tables it replaces and asks for confirmation (``--yes``
answers it), then runs the rebuild here, or with ``--background`` on a Celery worker.
"""

from __future__ import annotations

import math
import signal
import socket
import sys
import threading
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.management.base import ContinustCommand, Scope
from continust.projections import control
from continust.projections.runner import Outcome, run_projection


class Command(ContinustCommand):
    help = "List, run or rebuild the project's projections (read models kept from its log)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=["list", "run", "rebuild"])
        parser.add_argument("name", nargs="?", help="the projection (run, rebuild)")
        parser.add_argument("--yes", action="store_true", help="rebuild without asking")
        parser.add_argument(
            "--background", action="store_true", help="rebuild on a Celery worker, not here"
        )
        parser.add_argument(
            "--follow",
            action="store_true",
            help="run: keep following the log after catching up, until Ctrl-C",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        if options["action"] == "list":
            self._list(scope, options)
            return
        if not options["name"]:
            raise CommandError(f"name the projection to {options['action']}")
        row = control.get_projection(project, options["name"])
        if options["action"] == "rebuild":
            plan = control.rebuild_plan(row)
            replaces = ", ".join(plan.tables) or "no tables yet"
            question = (
                f"Rebuild projection {plan.name} of {project.slug} from position 0: it replaces"
                f" {replaces} ({plan.rows} rows, {plan.events} events, up to log position"
                f" {plan.position})"
                + ("; the rebuild under way starts over" if plan.running else "")
                + ". Type yes to go on: "
            )
            if not options["yes"]:
                if not sys.stdin.isatty():
                    raise CommandError(question.split(". Type")[0] + "; pass --yes to confirm")
                self.stdout.write(question, ending="")
                if input().strip().lower() != "yes":
                    raise CommandError("rebuild not confirmed; nothing changed")
            row = control.rebuild(row, actor="command line")
            if options["background"]:
                self.emit(options, {"projection": row.name, "rebuilding": True}, "sent to a worker")
                return
        stop = threading.Event()
        previous = signal.getsignal(signal.SIGINT)
        if options["follow"] and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            outcome = run_projection(
                row.pk,
                worker=f"command@{socket.gethostname()}",
                foreground=True,
                follow_seconds=math.inf if options["follow"] else 0,
                stop=stop,
            )
        finally:
            if options["follow"] and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, previous)
        row.refresh_from_db()
        described = control.describe(row)
        record = {
            "projection": row.name,
            "outcome": outcome,
            "position": str(described.position),
            "lag": described.lag,
            "events": row.events,
            "error": row.error if outcome == Outcome.FAILED else "",
        }
        if outcome == Outcome.SKIPPED:
            raise CommandError(f"projection {row.name} is held by {row.worker or 'a worker'}")
        text = f"{row.name}: {outcome} at {described.position}, {described.lag} behind"
        if outcome == Outcome.FAILED:
            self.emit(options, record, text)
            raise CommandError(f"projection {row.name} failed: {row.error}")
        self.emit(options, record, text)

    def _list(self, scope: Scope, options: dict[str, Any]) -> None:
        records = []
        lines = []
        for row in control.ensure(scope.the_project):
            d = control.describe(row)
            records.append(
                {
                    "projection": row.name,
                    "description": d.description,
                    "status": row.status,
                    "position": str(d.position),
                    "lag": d.lag,
                    "events": row.events,
                    "rate": row.rate,
                    "rebuilding": d.rebuild_position is not None,
                    "error": row.error,
                }
            )
            rebuilding = " (rebuilding)" if d.rebuild_position is not None else ""
            lines.append(
                f"{row.name}\t{row.status}{rebuilding}\tat {d.position}\t{d.lag} behind"
                f"\t{row.rate} events/s" + (f"\tlast error: {row.error}" if row.error else "")
            )
        self.emit(options, records, "\n".join(lines))

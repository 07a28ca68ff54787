"""pipelines: pipelines a user defines by a spec, from the command line.

pipelines --project P create NAME --spec JSON|@FILE|- [--start]
pipelines --project P list
pipelines --project P show NAME
pipelines --project P update NAME --spec JSON|@FILE|- [--reset [--yes]]
pipelines --project P pause NAME | resume NAME
pipelines --project P delete NAME [--yes]

The spec's format is docs/pipelines.md's "Pipelines a user defines". A bad spec is
refused with one line naming the failing path (a JSON Pointer into the spec), and
nothing is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.management.base import ContinustCommand, Scope, parse_json
from continust.models import Pipeline
from continust.pipelines import control
from continust.pipelines.records import pipeline_record

ACTIONS = ("create", "list", "show", "update", "pause", "resume", "delete")


class Command(ContinustCommand):
    help = (
        "Create, list, show, update, pause, resume and delete a project's pipelines defined "
        "by a JSON spec (sources, steps, sink; see docs/pipelines.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("name", nargs="?", help="the pipeline's name")
        parser.add_argument(
            "--spec", help="create, update: the spec, as JSON, @FILE, or - (standard input)"
        )
        parser.add_argument("--start", action="store_true", help="create: start it at once")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="update: start over from the beginning of the log (deletes the rows of the "
            "table the pipeline owns, empties its file), after a confirmation naming them",
        )
        parser.add_argument(
            "--yes", action="store_true", help="delete, update --reset: without asking"
        )
        parser.add_argument("--actor", default="", help="who does it")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        action = options["action"]
        if action == "list":
            rows = [pipeline_record(p) for p in Pipeline.objects.filter(project=project)]
            lines = [
                f"{r['name']}\t{r['status']}\t{r['definition']}\tepoch {r['checkpoint']['epoch']}"
                f"\tevents {r['events']}\tlag {r['lag']}"
                for r in rows
            ]
            self.emit(options, rows, "\n".join(lines) or "no pipelines")
            return
        name = options["name"]
        if not name:
            raise CommandError(f"{action} needs the pipeline's name")
        if action == "create":
            spec = _spec(options["spec"])
            pipeline = control.create_from_spec(project, name, spec, actor=options["actor"])
            if options["start"]:
                pipeline = control.start(pipeline)
            self.emit(
                options,
                pipeline_record(pipeline),
                f"pipeline {name} created, {'started' if options['start'] else 'stopped'}",
            )
            return
        pipeline = control.get_pipeline(project, name)
        if action == "show":
            record = pipeline_record(pipeline)
            self.emit(options, record, json.dumps(record, indent=2, ensure_ascii=False))
        elif action == "update":
            spec = _spec(options["spec"])
            if options["reset"]:
                self._confirm_reset(pipeline, spec, options)
            updated = control.update_spec(pipeline, spec, reset_progress=options["reset"])
            how = (
                "reset to the start of the log" if options["reset"] else f"at epoch {updated.epoch}"
            )
            self.emit(options, pipeline_record(updated), f"pipeline {name} updated, {how}")
        elif action in ("pause", "resume"):
            done = control.pause(pipeline) if action == "pause" else control.resume(pipeline)
            self.emit(options, pipeline_record(done), f"pipeline {name}: {action} requested")
        else:
            self._delete(pipeline, options)

    def _confirm_reset(self, pipeline: Pipeline, spec: Any, options: dict[str, Any]) -> None:
        """Ask before a reset, naming the table whose rows (or the file whose lines) go."""
        what = _reset_text(pipeline, spec)
        if options["yes"]:
            return
        if not sys.stdin.isatty():
            raise CommandError(f"update {pipeline.name} --reset {what}: pass --yes to confirm")
        answer = input(f"Update {pipeline.name} and reset it: {what}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("not updated")

    def _delete(self, pipeline: Pipeline, options: dict[str, Any]) -> None:
        plan = control.deletion_plan(pipeline)
        what = _deletion_text(plan)
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError(f"delete {what}? pass --yes to confirm")
            answer = input(f"Delete {what}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("not deleted")
        deleted = control.delete_pipeline(pipeline)
        self.emit(options, deleted, f"deleted {_deletion_text(deleted)}")


def _deletion_text(plan: dict[str, Any]) -> str:
    text = (
        f"pipeline {plan['pipeline']} with its {plan['runs']} run(s), {plan['checkpoints']} "
        f"checkpoint(s), {plan['window_results']} window result(s), "
        f"{plan['late_events']} late event(s) and {plan['webhook_deliveries']} webhook "
        "delivery(ies)"
    )
    if plan["kept"]:
        text += f" ({plan['kept']} is kept)"
    return text


def _reset_text(pipeline: Pipeline, spec: Any) -> str:
    """What an update with a reset deletes: the sink is the new spec's (checked first)."""
    plan = control.reset_plan(pipeline, spec)
    text = "forgets its progress and reads the log again from the beginning"
    if plan["clears"]:
        text = f"deletes {plan['clears']}, " + text
    if plan["keeps"]:
        text += f"; leaves {plan['keeps']}"
    return text


def _spec(raw: str | None) -> Any:
    if not raw:
        raise CommandError("give the spec with --spec (JSON, @FILE or -)")
    if raw == "-":
        return parse_json(sys.stdin.read(), "the spec")
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as err:
            raise CommandError(f"cannot read the spec from {raw[1:]}: {err.strerror}") from err
        return parse_json(text, f"the spec in {raw[1:]}")
    return parse_json(raw, "--spec")

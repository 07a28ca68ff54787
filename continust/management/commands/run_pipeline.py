"""run_pipeline NAME --project P: run a pipeline in the foreground until Ctrl-C (or caught up).

The run takes the same lease a Celery worker would, so it never runs beside one;
it resumes from the pipeline's last commit and its checkpoints, and on Ctrl-C
commits the epochs in flight before it exits. A pipeline that does not exist yet
is created from the definition of the same name (or ``--definition``) with
``--params``. A foreground run leaves the pipeline paused when it ends; if it dies
instead, its lease lapses and a Celery worker, if one runs, takes the pipeline over.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.core.errors import NotFound
from continust.management.base import ContinustCommand, Scope, parse_json
from continust.models import Pipeline
from continust.pipelines import control, registry
from continust.pipelines.runner import Outcome, run_pipeline


class Command(ContinustCommand):
    help = "Run a pipeline of the project in the foreground (created from a definition if new)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", nargs="?", help="the pipeline's name")
        parser.add_argument(
            "--definition", help="the definition a new pipeline runs (default: the one called NAME)"
        )
        parser.add_argument("--params", help="a new pipeline's parameters, a JSON object")
        parser.add_argument(
            "--until-caught-up",
            action="store_true",
            help="stop once the whole log is read and committed",
        )
        parser.add_argument(
            "--list", action="store_true", help="list the definitions and the project's pipelines"
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        if options["list"]:
            self._list(scope, options)
            return
        name = options["name"]
        if not name:
            raise CommandError("name the pipeline to run (or --list the definitions)")
        params = parse_json(options["params"], "--params") if options["params"] else None
        if params is not None and not isinstance(params, dict):
            raise CommandError("--params must be a JSON object")
        try:
            pipeline = control.get_pipeline(project, name)
        except NotFound:
            pipeline = control.create_pipeline(
                project, name, definition=options["definition"], params=params
            )
        else:
            if params is not None and params != pipeline.params:
                raise CommandError(
                    f"pipeline {name} exists with parameters {pipeline.params}; "
                    "create another one to run other parameters"
                )
        outcome = self._run(pipeline, options["until_caught_up"])
        if outcome == Outcome.SKIPPED:
            pipeline.refresh_from_db()
            raise CommandError(
                f"pipeline {name} is held by {pipeline.worker or 'a worker'} "
                f"until {pipeline.lease_expires_at:%H:%M:%S}; pause it first"
            )
        pipeline.refresh_from_db()
        record = {
            "pipeline": pipeline.name,
            "outcome": outcome,
            "epoch": pipeline.epoch,
            "events": pipeline.events,
            "results": pipeline.results,
            "late_events": pipeline.late_events,
            "status": pipeline.status,
            "error": pipeline.error,
        }
        text = (
            f"{pipeline.name}: {outcome}; {pipeline.events} events in {pipeline.epoch} "
            f"epochs, {pipeline.results} results written, {pipeline.late_events} late"
        )
        if outcome == Outcome.FAILED:
            raise CommandError(f"{pipeline.name} failed: {pipeline.error}")
        self.emit(options, record, text)

    def _run(self, pipeline: Pipeline, until_caught_up: bool) -> str:
        stop = threading.Event()

        def ask_to_stop(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            self.stderr.write("stopping: committing the epochs in flight (again to abort)")
            stop.set()

        previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = f"{socket.gethostname()}:{os.getpid()} (foreground)"
            return run_pipeline(
                pipeline.pk, worker=worker, until_caught_up=until_caught_up, stop=stop, enable=True
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _list(self, scope: Scope, options: dict[str, Any]) -> None:
        definitions = [
            {"name": d.name, "description": d.description, "defaults": dict(d.defaults)}
            for d in registry.definitions()
        ]
        pipelines = [
            {
                "name": p.name,
                "definition": p.definition,
                "status": p.status,
                "epoch": p.epoch,
                "events": p.events,
            }
            for p in Pipeline.objects.filter(project=scope.the_project)
        ]
        lines = [f"definition {d['name']}: {d['description']}" for d in definitions]
        lines += [
            f"pipeline {p['name']} ({p['definition']}): {p['status']}, {p['events']} events"
            for p in pipelines
        ]
        self.emit(options, {"definitions": definitions, "pipelines": pipelines}, "\n".join(lines))

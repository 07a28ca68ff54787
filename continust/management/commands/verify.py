"""verify [--project P [--fan-out]] [--stream S] [--digest FILE] [--export FILE]: check the log.

Recompute hash chains, states and version digests and check branch heads against their
moves; with --digest, also that the log still extends a digest taken earlier; with
--export, check an export file (and a digest) without the database. Exit 1 naming every
broken link of every stream; --json prints the report in every case. --fan-out verifies
a project's streams side by side on the Celery workers (continust.audit.fanout).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.audit import offline
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Verify hash chains, states, version digests and branch heads (and, with "
        "--digest FILE, that the log extends a digest); exit 1 naming every broken "
        "link. --export FILE checks an export file instead, without the database."
    )
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--project", help="only this project (default: every project)")
        parser.add_argument("--stream", help="only this stream of the project")
        parser.add_argument(
            "--fan-out",
            action="store_true",
            help="with --project: verify its streams side by side on the Celery workers, "
            "printing progress, then the report",
        )
        parser.add_argument(
            "--digest", metavar="FILE", help="a digest (from `digest`) the log must still extend"
        )
        parser.add_argument(
            "--export",
            metavar="FILE",
            help="check this export_jsonl file offline (with --digest: "
            "against it), not the database",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            super().handle(*args, **options)
        except CommandError as err:
            if options["json"] and not getattr(err, "reported", False):
                self.stdout.write(json.dumps({"ok": False, "error": str(err)}))
            raise

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        if options["stream"] and not options["project"]:
            raise CommandError("--stream needs --project")
        if options["fan_out"] and (not options["project"] or options["stream"]):
            raise CommandError("--fan-out verifies a whole project: give --project, no --stream")
        if options["fan_out"] and (options["digest"] or options["export"]):
            raise CommandError("--fan-out checks the database only: no --digest or --export")
        document = _read_json(options["digest"]) if options["digest"] else None
        if options["export"]:
            self._check_export(options, document)
            return
        report = (
            self._fan_out(options) if options["fan_out"] else _verify_database(options, document)
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        elif report.ok:
            self.stdout.write(
                f"ok: {report.streams} streams, {report.events} events, "
                f"{report.versions} versions verified"
                + (" and the log extends the digest" if document is not None else "")
            )
            for label, head in report.heads.items():
                self.stdout.write(f"  {label} head {head}")
        else:
            for broken in report.breaks:
                self.stdout.write(f"broken: {broken}")
        if not report.ok:
            more = len(report.breaks) - 1
            raise _reported(
                f"broken: {report.broken}"
                + (f" (and {more} more, in {len(report.broken_streams)} streams)" if more else "")
            )

    def _fan_out(self, options: dict[str, Any]) -> Any:
        from continust.audit import fanout
        from continust.log.lookup import get_project

        verification = fanout.start(get_project(options["project"]), actor="cli")
        shown = ""
        while True:
            verification.refresh_from_db()
            progress = fanout.progress(verification)
            if progress.line() != shown and not options["json"]:
                shown = progress.line()
                self.stderr.write(f"verification {verification.pk}: {shown}")
            if verification.finished_at is not None:
                return fanout.report(verification)
            time.sleep(0.5)

    def _check_export(self, options: dict[str, Any], document: Any) -> None:
        try:
            with open(options["export"], encoding="utf-8") as handle:
                problems = offline.check_export(handle, document, options["project"])
        except (OSError, UnicodeDecodeError) as err:
            raise CommandError(f"cannot read {options['export']}: {err}") from err
        if options["json"]:
            self.stdout.write(
                json.dumps({"ok": not problems, "problems": problems}, ensure_ascii=False)
            )
        else:
            for problem in problems:
                self.stdout.write(f"broken: {problem}")
            if not problems:
                self.stdout.write(
                    "ok: the export's hashes hold"
                    + (" and it extends the digest" if document else "")
                )
        if problems:
            raise _reported(
                f"broken: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            )


def _verify_database(options: dict[str, Any], document: Any) -> Any:
    # The database is imported here only: --export checks a file with offline's code alone.
    from continust.audit.digests import verify_digest
    from continust.audit.integrity import verify
    from continust.log.lookup import get_project, get_stream

    project = get_project(options["project"]) if options["project"] else None
    if document is not None:
        if options["stream"]:
            raise CommandError("--digest covers whole streams of a project: no --stream")
        return verify_digest(document, project)
    streams = [get_stream(project, options["stream"])] if options["stream"] and project else None
    return verify(project, streams)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise CommandError(f"cannot read the digest {path}: {err}") from err


def _reported(message: str) -> CommandError:
    """A failure whose report was printed already (so --json prints nothing more)."""
    error = CommandError(message, returncode=1)
    error.reported = True  # type: ignore[attr-defined]
    return error

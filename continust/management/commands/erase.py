"""erase: destroy a data subject's key, so its personal values read as erased everywhere.

erase --project P --subject ID --reason TEXT [--actor NAME] [--dry-run] [--json]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from continust.audit.erasure import affected_events, erase, subject_key
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Erase a data subject: destroy its key, so every surface shows its personal values "
        "as [erased] while the log, its hashes and verify stay intact; recorded in the "
        "project's audit stream. Prints the events it redacted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--subject", required=True, help="the data subject's id")
        parser.add_argument("--reason", required=True, help="why (kept in the audit stream)")
        parser.add_argument("--actor", default="", help="who erases (for the audit stream)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="list the events the erasure would redact, and change nothing",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        subject = options["subject"]
        if options["dry_run"]:
            subject_key(project, subject)
            events = affected_events(project, subject)
            data = {
                "project": project.slug,
                "subject": subject,
                "dry_run": True,
                "events": [event.as_dict() for event in events],
            }
            self.emit(options, data, _text(f"would erase {subject!r}", events))
            return
        done = erase(project, subject, actor=options["actor"], reason=options["reason"])
        self.emit(options, done.as_dict(), _text(f"erased {subject!r}", done.events))


def _text(head: str, events: Any) -> str:
    lines = [f"{head}: {len(events)} event(s) redacted"]
    lines += [f"  {e.stream} #{e.seq} {e.type} {e.id}" for e in events]
    return "\n".join(lines)

"""personal: show or set whether a stream stores its payloads encrypted per data subject.

personal --project P --stream S [show]
personal --project P --stream S set --subject-member MEMBER [--actor NAME]
personal --project P --stream S off [--actor NAME]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.audit.erasure import set_personal
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = (
        "Show or set a stream's encryption of personal data: with set, every payload "
        "member but the one naming the data subject is stored encrypted with that "
        "subject's key (recorded in the project's audit stream; earlier events keep "
        "their form)."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", nargs="?", choices=("show", "set", "off"), default="show")
        parser.add_argument(
            "--subject-member", help="with set: the payload member that names the subject"
        )
        parser.add_argument("--actor", default="", help="who changes it (for the audit stream)")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        member = options["subject_member"]
        action = options["action"]
        if action == "set":
            if member is None:
                raise CommandError("set needs --subject-member MEMBER")
            set_personal(stream, member, actor=options["actor"])
        elif member is not None:
            raise CommandError("--subject-member goes with set")
        elif action == "off":
            set_personal(stream, None, actor=options["actor"])
        personal = stream.personal
        text = (
            f"{stream.name}: payloads encrypted per data subject named by member "
            f"{personal['subject']!r}"
            if personal
            else f"{stream.name}: payloads stored as they are"
        )
        self.emit(options, {"stream": stream.name, "personal": personal}, text)

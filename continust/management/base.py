"""The shared shape of continust's commands: --project, --json, one-line errors."""

from __future__ import annotations

import json
import sys
from argparse import ArgumentTypeError
from dataclasses import dataclass
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

from continust.core.errors import ContinustError, InvalidName
from continust.core.parsing import parse_number
from continust.log.lookup import get_project, get_stream
from continust.models import Project, Stream


@dataclass(frozen=True)
class Scope:
    """The project and stream a command was pointed at, when it takes them."""

    project: Project | None
    stream: Stream | None

    @property
    def the_project(self) -> Project:
        assert self.project is not None
        return self.project

    @property
    def the_stream(self) -> Stream:
        assert self.stream is not None
        return self.stream


class ContinustCommand(BaseCommand):
    """A command that turns domain errors into a clear one-line error and exit status 1."""

    needs_project = True
    needs_stream = False

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """A parser whose refusals are one line and exit status 1, as the command's own are
        (argparse prints its usage and exits 2)."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def refuse(message: str) -> NoReturn:
            if not parser.called_from_command_line:
                raise CommandError(f"Error: {message}")
            sys.stderr.write(f"CommandError: {message}\n")
            sys.exit(1)

        parser.error = refuse  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        if self.needs_project:
            parser.add_argument("--project", required=True, help="the project's slug")
        if self.needs_stream:
            parser.add_argument("--stream", required=True, help="the stream's name")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = get_project(options["project"]) if self.needs_project else None
            stream = (
                get_stream(project, options["stream"])
                if self.needs_stream and project is not None
                else None
            )
            self.run(Scope(project, stream), options)
        except ContinustError as err:
            raise CommandError(str(err)) from err

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def confirm(self, options: dict[str, Any], question: str) -> None:
        """Go on with --yes, or when a person at a terminal types yes; else refuse."""
        if options["yes"]:
            return
        if not sys.stdin.isatty():
            raise CommandError(f"{question} Nothing was changed: add --yes to confirm.")
        answer = input(f"{question} Type yes to go on: ")
        if answer.strip().lower() != "yes":
            raise CommandError("Nothing was changed.")

    def emit(self, options: dict[str, Any], data: Any, text: str) -> None:
        """Print ``data`` as JSON with --json, else the human text."""
        if options["json"]:
            self.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
        else:
            self.stdout.write(text)


def number(text: str) -> int:
    """An argument type: a whole number in ASCII digits (argparse's ``int`` reads ``١٢``)."""
    try:
        return parse_number(text)
    except InvalidName as err:
        raise ArgumentTypeError(str(err)) from err


def parse_json(raw: str, what: str) -> Any:
    """Parse a JSON argument or fail with a one-line error."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise CommandError(f"{what} is not valid JSON: {err}") from err

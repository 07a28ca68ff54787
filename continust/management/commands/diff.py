"""diff --stream S A B (or A..B) [--format text|json-patch|merge-patch]; diff --files A B."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.documents import diff as diffs
from continust.log.lookup import get_project, get_stream, resolve_range, resolve_version
from continust.log.subjects import readable_state
from continust.management.base import ContinustCommand, Scope


class Command(ContinustCommand):
    help = "Structural diff of two versions' states, or of two JSON files with --files."
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--project")
        parser.add_argument("--stream")
        parser.add_argument("a", help="a revision (main~3, v12^2, a tag), or a range A..B")
        parser.add_argument("b", nargs="?", help="a revision; left out when A is a range A..B")
        parser.add_argument("--files", action="store_true", help="A and B are JSON files")
        parser.add_argument(
            "--format", choices=["text", "json-patch", "merge-patch", "changes"], default="text"
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        if options["files"]:
            if options["b"] is None:
                raise CommandError("diff --files takes two files, A.json B.json")
            before, after = (self._load(options[side]) for side in ("a", "b"))
        else:
            if not options["project"] or not options["stream"]:
                raise CommandError("diff of versions needs --project and --stream (or --files)")
            stream = get_stream(get_project(options["project"]), options["stream"])
            if options["b"] is None:
                a, b = resolve_range(stream, options["a"])
            else:
                a, b = resolve_version(stream, options["a"]), resolve_version(stream, options["b"])
            before, after = readable_state(a), readable_state(b)
        fmt = options["format"]
        if fmt == "json-patch":
            out: Any = diffs.to_json_patch(before, after)
        elif fmt == "merge-patch":
            try:
                out = diffs.merge_patch(before, after)
            except diffs.NullNotExpressible as err:
                raise CommandError(f"{err} (--format json-patch)") from err
        else:
            changes = diffs.diff(before, after)
            if fmt == "text" and not options["json"]:
                self.stdout.write(diffs.format_changes(changes) or "no differences")
                return
            out = [c.to_dict() for c in changes]
        indent = None if options["json"] else 2
        self.stdout.write(json.dumps(out, ensure_ascii=False, indent=indent))

    def _load(self, name: str) -> Any:
        try:
            return json.loads(Path(name).read_text(encoding="utf-8"))
        except OSError as err:
            raise CommandError(f"cannot read {name}: {err.strerror}") from err
        except json.JSONDecodeError as err:
            raise CommandError(f"{name} is not valid JSON: {err}") from err

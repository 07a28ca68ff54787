"""lineage --stream S merge-bases A B | ancestors A | between A B | path A B (A B or A..B)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.graph.cache import graph_for
from continust.log.lookup import resolve_range, resolve_version
from continust.management.base import ContinustCommand, Scope

_ARITY = {"merge-bases": 2, "ancestors": 1, "descendants": 1, "between": 2, "path": 2}


class Command(ContinustCommand):
    help = (
        "Ask the version graph: merge-bases A B (git merge-base --all), ancestors A "
        "(git rev-list A), between A B (git rev-list B ^A), path A B. --count counts."
    )
    needs_stream = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("question", choices=sorted(_ARITY))
        parser.add_argument(
            "versions",
            nargs="+",
            help="revisions (ids, keys, branches, tags, main~3, v12^2); a pair may be one A..B",
        )
        parser.add_argument("--count", action="store_true")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        stream = scope.the_stream
        question, refs = options["question"], options["versions"]
        if _ARITY[question] == 2 and len(refs) == 1:
            versions = list(resolve_range(stream, refs[0]))
        elif len(refs) != _ARITY[question]:
            raise CommandError(f"{question} takes {_ARITY[question]} version(s), not {len(refs)}")
        else:
            versions = [resolve_version(stream, ref) for ref in refs]
        graph = graph_for(stream)
        ids = [v.pk for v in versions]
        answer: Any
        if question == "merge-bases":
            answer = sorted(graph.merge_bases(*ids))
        elif question == "ancestors":
            answer = sorted(graph.ancestors(ids[0]), reverse=True)
        elif question == "descendants":
            answer = sorted(graph.descendants(ids[0]))
        elif question == "between":
            answer = graph.between(*ids)
        else:
            found = graph.path(*ids)
            if found is None:
                raise CommandError(f"versions {ids[0]} and {ids[1]} share no ancestor")
            answer = {
                "base": found.base,
                "from_a": list(found.from_a),
                "from_b": list(found.from_b),
            }
        if options["count"] and isinstance(answer, list):
            answer = len(answer)
        if options["json"]:
            self.emit(options, answer, "")
        elif isinstance(answer, list):
            self.stdout.write("\n".join(str(v) for v in answer))
        elif isinstance(answer, dict):  # path: the base, then each side's walk down to it
            self.stdout.write(
                f"base {answer['base']}\n"
                f"from A: {' '.join(str(v) for v in answer['from_a'])}\n"
                f"from B: {' '.join(str(v) for v in answer['from_b'])}"
            )
        else:
            self.stdout.write(str(answer))

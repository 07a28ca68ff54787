"""reviews: list, open, show, comment on, tick, approve and report reviews.

reviews --project P list [--stream S]
reviews --project P open --stream S (--branch B [--against B] | --head V [--base V])
        [--title T] --actor A
reviews --project P show ID
reviews --project P comment ID --body TEXT [--path P | --on-version ID | --event E]
        [--reply-to C] --actor A
reviews --project P check ID --path P [--uncheck] --actor A
reviews --project P approve ID [--note TEXT] --actor A
reviews --project P request-changes ID --note TEXT --actor A
reviews --project P report ID [--format json|csv] [-o FILE]

The same actions as the explorer's Reviews pages, each an event of the project's audit
stream; an approval follows the project's rule (``continust.audit.reviews``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.audit import reports, reviews
from continust.core.errors import NotFound
from continust.log.canonical import timestamp_text
from continust.log.lookup import get_stream, resolve_version
from continust.management.base import ContinustCommand, Scope, number
from continust.models import Event, Project, Review
from continust.read.records import review_record

ACTIONS = ("list", "open", "show", "comment", "check", "approve", "request-changes", "report")
WRITES = {"open", "comment", "check", "approve", "request-changes"}


def _event(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "actor": event.actor,
        "time": timestamp_text(event.timestamp),
        "payload": event.payload,
    }


def _comment(node: reviews.Comment) -> dict[str, Any]:
    return {
        "id": str(node.event.id),
        "actor": node.event.actor,
        "target": node.target.key,
        "body": node.body,
        "corrected": node.corrected,
        "replies": [_comment(r) for r in node.replies],
    }


def _comment_lines(node: dict[str, Any], depth: int = 0) -> list[str]:
    pad = "  " * depth
    lines = [f"{pad}- {node['actor']} on {node['target']} ({node['id']}): {node['body']}"]
    for reply in node["replies"]:
        lines += _comment_lines(reply, depth + 1)
    return lines


class Command(ContinustCommand):
    help = (
        "Reviews, as the explorer's Reviews pages: list, open (a branch or a range), show, "
        "comment (on the review, a path, a version or an event; or reply), check a path, "
        "approve, request-changes, and the audit report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("review", nargs="?", type=number, help="the review's id")
        parser.add_argument("--stream", help="list: only this stream's; open: the stream")
        parser.add_argument("--branch", help="open: review this branch against --against")
        parser.add_argument("--against", default="main", help="open: the base branch (main)")
        parser.add_argument("--head", help="open: the range's last version")
        parser.add_argument("--base", help="open: the version the range starts after")
        parser.add_argument("--title", default="", help="open: a title")
        parser.add_argument("--body", help="comment: the text")
        parser.add_argument("--path", help="comment: about this path; check: the path")
        parser.add_argument(
            "--on-version", dest="version", type=number, help="comment: about this version id"
        )
        parser.add_argument("--event", help="comment: about this event id")
        parser.add_argument("--reply-to", help="comment: the id of the comment answered")
        parser.add_argument("--uncheck", action="store_true", help="check: untick the path")
        parser.add_argument("--note", default="", help="approve, request-changes: why")
        parser.add_argument("--actor", default="", help="who does it (recorded in the log)")
        parser.add_argument("--format", choices=("json", "csv"), default="json")
        parser.add_argument("-o", "--output", help="report: write to this file")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        action = options["action"]
        if action in WRITES and not options["actor"].strip():
            raise CommandError(f"{action} needs --actor: who does it is recorded in the log")
        if action == "list":
            self._list(project, options)
            return
        if action == "open":
            review = self._open(project, options)
            self._show(review, options, f"opened review {review.pk}: ")
            return
        if options["review"] is None:
            raise CommandError(f"{action} needs the review's id")
        review = _review(project, options["review"])
        actor = options["actor"].strip()
        if action == "show":
            self._show(review, options, "")
        elif action == "comment":
            if not options["body"]:
                raise CommandError("comment needs --body")
            target = _target(options)
            event = reviews.comment(
                review,
                actor=actor,
                body=options["body"],
                target=target,
                reply_to=options["reply_to"],
            )
            self.emit(options, _event(event), f"commented on review {review.pk}: {event.id}")
        elif action == "check":
            if options["path"] is None:
                raise CommandError("check needs --path")
            event = reviews.check_path(
                review, actor=actor, path=options["path"], checked=not options["uncheck"]
            )
            word = "unticked" if options["uncheck"] else "ticked"
            self.emit(options, _event(event), f"{word} {options['path']} on review {review.pk}")
        elif action in {"approve", "request-changes"}:
            decision = reviews.APPROVE if action == "approve" else reviews.REQUEST_CHANGES
            event = reviews.decide(review, actor=actor, decision=decision, note=options["note"])
            status = reviews.review_log(review).status_label
            self.emit(options, _event(event), f"review {review.pk}: {action}; it is {status}")
        else:
            self._report(review, options)

    def _list(self, project: Project, options: dict[str, Any]) -> None:
        rows = Review.objects.filter(project=project).select_related("stream").order_by("-id")
        if options["stream"]:
            rows = rows.filter(stream=get_stream(project, options["stream"]))
        found = list(rows)
        status = reviews.statuses(found)
        data = [review_record(r, status[r.pk]) for r in found]
        lines = [
            f"{r['id']}  {r['status']:<17}  {r['stream']}  {r['title']}  (by {r['opened_by']})"
            for r in data
        ]
        self.emit(options, data, "\n".join(lines) or "no reviews")

    def _open(self, project: Project, options: dict[str, Any]) -> Review:
        if not options["stream"]:
            raise CommandError("open needs --stream")
        stream = get_stream(project, options["stream"])
        actor = options["actor"].strip()
        if options["branch"]:
            if options["head"] or options["base"]:
                raise CommandError(
                    "open a branch (--branch), or a range (--head, --base), not both"
                )
            return reviews.open_branch_review(
                stream,
                options["branch"],
                actor=actor,
                title=options["title"],
                against=options["against"],
            )
        if not options["head"]:
            raise CommandError("open needs --branch, or --head (and --base)")
        head = resolve_version(stream, options["head"])
        base = resolve_version(stream, options["base"]) if options["base"] else None
        return reviews.open_review(
            stream, head=head, base=base, actor=actor, title=options["title"]
        )

    def _show(self, review: Review, options: dict[str, Any], prefix: str) -> None:
        log = reviews.review_log(review)
        checklist = [
            {
                "path": path,
                "checked": path in log.checked,
                "by": log.checked[path].actor if path in log.checked else None,
            }
            for path in reviews.changed_paths(review)
        ]
        data = {
            **review_record(review, log.status),
            "checklist": checklist,
            "comments": [_comment(c) for c in log.threads],
            "decisions": {a: _event(e) for a, e in log.latest_decisions.items()},
        }
        lines = [
            f"{prefix}review {review.pk} ({log.status_label}): {review.title}",
            f"stream {review.stream.name}, v{review.base_id or 'root'}..v{review.head_id}, "
            f"opened by {review.opened_by}",
            reviews.approval_rule(review.project),
            "checklist:",
            *(f"  [{'x' if c['checked'] else ' '}] {c['path']}" for c in checklist),
        ]
        if data["comments"]:
            lines.append("comments:")
            for node in data["comments"]:
                lines += ["  " + line for line in _comment_lines(node)]
        for actor, event in data["decisions"].items():
            lines.append(
                f"{actor}: {event['payload'].get('decision')} {event['payload'].get('note', '')}"
            )
        self.emit(options, data, "\n".join(lines))

    def _report(self, review: Review, options: dict[str, Any]) -> None:
        report = reports.review_report(review, generated_by=options["actor"] or "command line")
        if options["format"] == "csv":
            text = report.csv_text()
        else:
            text = json.dumps(report.as_dict(), ensure_ascii=False, indent=2)
        if options["output"]:
            try:
                Path(options["output"]).write_text(text, encoding="utf-8")
            except OSError as err:
                raise CommandError(f"cannot write {options['output']}: {err}") from err
            self.stdout.write(f"wrote the report of review {review.pk} to {options['output']}")
        else:
            self.stdout.write(text)


def _review(project: Project, review_id: int) -> Review:
    review = (
        Review.objects.select_related("stream", "project", "base", "head")
        .filter(project=project, pk=review_id)
        .first()
    )
    if review is None:
        raise NotFound(f"project {project.slug} has no review {review_id}")
    return review


def _target(options: dict[str, Any]) -> reviews.Target:
    given = [k for k in ("path", "version", "event") if options[k] is not None]
    if len(given) > 1:
        raise CommandError("a comment is about one of --path, --on-version or --event")
    if not given:
        return reviews.Target()
    kind = given[0]
    return reviews.Target(kind=kind, **{kind: options[kind]})

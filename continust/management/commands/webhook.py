"""webhook: a project's webhooks from the command line.

webhook --project P add URL [--type PREFIX ...] [--secret whsec_...] [--paused] [--start now|0|T.P]
webhook --project P list
webhook --project P pause ID | resume ID | rotate ID [--secret whsec_...] | remove ID [--yes]
webhook --project P deliveries ID [--status failed] [--limit N]
webhook --project P redeliver ID DELIVERY
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.core.parsing import parse_number
from continust.management.base import ContinustCommand, Scope, number
from continust.models import DeliveryStatus, Webhook, WebhookDelivery
from continust.webhooks import registry
from continust.webhooks.records import delivery_record, webhook_record

ACTIONS = ("add", "list", "pause", "resume", "rotate", "remove", "deliveries", "redeliver")


class Command(ContinustCommand):
    help = (
        "Register, list, pause, resume, rotate the secret of and remove a project's webhooks; "
        "list a webhook's deliveries with every attempt, and redeliver a failed one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("target", nargs="?", help="add: the URL; otherwise the webhook's id")
        parser.add_argument("delivery", nargs="?", type=number, help="redeliver: the delivery")
        parser.add_argument(
            "--type",
            action="append",
            default=[],
            dest="types",
            metavar="PREFIX",
            help="add: deliver events whose type starts with PREFIX (repeat; none: every event)",
        )
        parser.add_argument("--secret", help="add, rotate: the secret (whsec_...; else generated)")
        parser.add_argument("--paused", action="store_true", help="add: register it paused")
        parser.add_argument(
            "--start",
            default=registry.NOW,
            help="add: now (default), 0 (the whole log) or a log position T.P",
        )
        parser.add_argument(
            "--status", choices=DeliveryStatus.values, help="deliveries: only those in it"
        )
        parser.add_argument("--limit", type=number, default=20, help="deliveries: how many")
        parser.add_argument("--actor", default="", help="who does it (for the audit stream)")
        parser.add_argument(
            "--yes", action="store_true", help="remove: confirm without asking (no terminal)"
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        action = options["action"]
        actor = options["actor"]
        if action == "add":
            if not options["target"]:
                raise CommandError("add needs the webhook's URL")
            webhook, secret = registry.register(
                project,
                options["target"],
                options["types"],
                secret=options["secret"],
                active=not options["paused"],
                start=options["start"],
                actor=actor,
            )
            data = {**webhook_record(webhook), "secret": secret}
            self.emit(
                options,
                data,
                f"webhook {webhook.pk}: {webhook.url} ({_filters(webhook)}), "
                f"{'active' if webhook.active else 'paused'}, from log position "
                f"{data['position']}\nsecret (shown once, keep it): {secret}",
            )
            return
        if action == "list":
            rows = [webhook_record(w) for w in Webhook.objects.filter(project=project)]
            lines = [
                f"{r['id']}\t{'active' if r['active'] else 'paused'}\t{r['url']}\t"
                f"{','.join(r['event_types']) or '*'}\tat {r['position']}\t"
                + " ".join(f"{k} {v}" for k, v in r["deliveries"].items())
                for r in rows
            ]
            self.emit(options, rows, "\n".join(lines) or "no webhooks")
            return
        webhook = registry.get(project, _id(options["target"]))
        if action in ("pause", "resume"):
            registry.set_active(webhook, action == "resume", actor=actor)
            self.emit(options, webhook_record(webhook), f"webhook {webhook.pk} {action}d")
        elif action == "rotate":
            secret = registry.rotate_secret(webhook, options["secret"], actor=actor)
            self.emit(
                options,
                {"secret": secret},
                f"webhook {webhook.pk}: new secret (shown once, keep it): {secret}",
            )
        elif action == "remove":
            pending = WebhookDelivery.objects.filter(webhook=webhook).count()
            self.confirm(
                options,
                f"Remove webhook {webhook.pk} ({webhook.url}) with its {pending} deliveries "
                "and their attempts: nothing is sent to it any more.",
            )
            count = registry.remove(webhook, actor=actor)
            self.emit(
                options,
                {"removed": webhook.pk, "deliveries": count},
                f"webhook {webhook.pk} removed with its {count} deliveries",
            )
        elif action == "deliveries":
            found = (
                WebhookDelivery.objects.filter(webhook=webhook)
                .select_related("event__stream", "pipeline")
                .prefetch_related("tries")
                .order_by("-id")
            )
            if options["status"]:
                found = found.filter(status=options["status"])
            records = [delivery_record(d) for d in found[: options["limit"]]]
            self.emit(options, records, "\n".join(_delivery_lines(r) for r in records) or "none")
        else:  # redeliver
            if options["delivery"] is None:
                raise CommandError("redeliver needs the webhook's id and the delivery's")
            again = registry.redeliver(webhook, options["delivery"], actor=actor)
            self.emit(options, delivery_record(again), f"delivery {again.pk} queued again")


def _id(text: str | None) -> int:
    if not text:
        raise CommandError("name the webhook by its id (webhook list shows them)")
    return parse_number(text, "webhook id")


def _filters(webhook: Webhook) -> str:
    return "types " + ", ".join(webhook.event_types) if webhook.event_types else "every event"


def _delivery_lines(record: dict[str, Any]) -> str:
    event = record["event"]
    what = (
        f"{event['type']}\t{event['stream']}"
        if event is not None
        else f"pipeline {record['pipeline']['name']}\tepoch {record['pipeline']['epoch']}"
    )
    head = f"{record['id']}\t{record['status']}\t{what}\tat {record['position']}"
    tries = [
        f"  #{a['number']} {a['started_at']} {a['status_code'] or '-'} {a['duration_ms']} ms"
        + (f" {a['error']}" if a["error"] else "")
        for a in record["attempts"]
    ]
    return "\n".join([head, *tries])

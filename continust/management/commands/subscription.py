"""subscription: create, list, run or reset a subscription to a project's log.

subscription create NAME --project P [--persistent] [--stream S] [--type-prefix T]
                    [--actor A] [--from T.P] [--handler pkg.module.function]
                    [--max-attempts N] [--backoff S] [--backoff-max S]
                    [--ack-timeout S] [--consumers N]
subscription list --project P
subscription run NAME --project P [--handler H] [--until-caught-up]
subscription reset NAME --project P [--to T.P] [--yes]
subscription replay-parked NAME --project P [--yes]
subscription start|stop NAME --project P          (a persistent one's workers)
"""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import CommandError, CommandParser

from continust.management.base import ContinustCommand, Scope, number
from continust.models import SubscriptionKind
from continust.read.project_log import START, LogFilter, LogPosition
from continust.subscriptions import catchup, persistent, registry

ACTIONS = ["create", "list", "run", "reset", "replay-parked", "start", "stop"]


def seconds(text: str) -> float:
    """An argument type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ArgumentTypeError(f"{text[:40]!r} is not a number of seconds above 0")
    return value


class Command(ContinustCommand):
    help = (
        "Create, list, run or reset a named, durable subscription to a project's log; replay "
        "a persistent subscription's parked events; start or stop its consumers on workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("action", choices=ACTIONS, help="what to do")
        parser.add_argument("name", nargs="?", help="the subscription's name")
        parser.add_argument(
            "--persistent",
            action="store_true",
            help="create a persistent subscription (competing consumers, retries, parking)",
        )
        parser.add_argument("--stream", default="", help="only this stream's events")
        parser.add_argument("--type-prefix", default="", help="only event types starting so")
        parser.add_argument("--actor", default="", help="only this actor's events")
        parser.add_argument(
            "--from", dest="start", default="0", help="the log position T.P to read after"
        )
        parser.add_argument("--to", default="0", help="reset: the log position T.P to go back to")
        parser.add_argument(
            "--handler", default="", help="the function called on each event: pkg.module.function"
        )
        parser.add_argument("--max-attempts", type=number, default=5, help="park after N failures")
        parser.add_argument("--backoff", type=seconds, default=1.0, help="first retry delay (s)")
        parser.add_argument("--backoff-max", type=seconds, default=60.0, help="longest delay (s)")
        parser.add_argument(
            "--ack-timeout", type=seconds, default=30.0, help="a consumer's hold on an event (s)"
        )
        parser.add_argument(
            "--consumers", type=number, default=1, help="consumers to run on workers"
        )
        parser.add_argument(
            "--until-caught-up", action="store_true", help="run: stop once nothing is left"
        )
        parser.add_argument("--yes", action="store_true", help="do it without asking")
        parser.add_argument("--actor-name", default="", help="who asks for it")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        project = scope.the_project
        action = options["action"]
        if action == "list":
            shown = registry.overview(project)
            lines = [
                f"{o.subscription.name}\t{o.subscription.kind}\tat {o.position}\tlag {o.lag}"
                f"\tparked {o.parked}\t{'running' if o.running else 'idle'}"
                + (
                    f"\tlast error: {o.subscription.last_error}"
                    if o.subscription.last_error
                    else ""
                )
                for o in shown
            ]
            self.emit(options, [o.record() for o in shown], "\n".join(lines) or "no subscriptions")
            return
        if not options["name"]:
            raise CommandError(f"subscription {action} needs the subscription's name")
        if action == "create":
            created = registry.create_subscription(
                project,
                options["name"],
                kind=SubscriptionKind.PERSISTENT
                if options["persistent"]
                else SubscriptionKind.CATCH_UP,
                where=LogFilter(
                    stream=options["stream"],
                    type_prefix=options["type_prefix"],
                    actor=options["actor"],
                ),
                start=LogPosition.parse(options["start"]),
                handler=options["handler"],
                max_attempts=options["max_attempts"],
                backoff_seconds=options["backoff"],
                backoff_max_seconds=max(options["backoff_max"], options["backoff"]),
                ack_timeout_seconds=options["ack_timeout"],
                consumers=options["consumers"],
                actor=options["actor_name"],
            )
            made = registry.describe(created)
            self.emit(
                options,
                made.record(),
                f"created {created.kind} subscription {created.name} at {made.position}",
            )
            return
        subscription = registry.get_subscription(project, options["name"])
        if action == "run":
            chosen = options["handler"] or subscription.handler or ""
            if not chosen:
                raise CommandError(
                    f"subscription {subscription.name} has no handler: give one with "
                    "--handler package.module.function"
                )
            handler = registry.resolve_handler(chosen)
            if subscription.kind == SubscriptionKind.CATCH_UP:
                done = catchup.run(
                    subscription,
                    handler,
                    until_caught_up=options["until_caught_up"],
                    worker=f"cli:{subscription.name}",
                )
                self.emit(
                    options,
                    {"handled": done.handled, "position": str(done.position)},
                    f"handled {done.handled} events; {subscription.name} is at {done.position}",
                )
            else:
                outcome = persistent.consume(
                    subscription,
                    handler,
                    consumer=f"cli:{subscription.name}",
                    until_idle=options["until_caught_up"],
                )
                self.emit(
                    options,
                    vars(outcome),
                    f"acknowledged {outcome.acknowledged}, failed {outcome.failed}, "
                    f"parked {outcome.parked}",
                )
            return
        if action == "reset":
            to = LogPosition.parse(options["to"]) if options["to"] else START
            plan = registry.plan_reset(subscription, to)
            self.confirm(options, plan.question())
            registry.reset(subscription, to)
            self.emit(options, {"name": subscription.name, "position": str(to)}, plan.question())
            return
        if action == "replay-parked":
            parked = len(registry.parked_messages(subscription, limit=10**9))
            self.confirm(
                options,
                f"Queue the {parked} parked events of subscription {subscription.name!r} of "
                f"{project.slug} again, with their attempts counted afresh.",
            )
            count = registry.replay_parked(subscription)
            self.emit(options, {"replayed": count}, f"queued {count} parked events again")
            return
        if action == "start":
            asked = registry.start_consumers(subscription)
            self.emit(options, {"consumers": asked}, f"asked workers for {asked} consumers")
            return
        registry.stop_consumers(subscription)
        self.emit(options, {"stopped": True}, f"workers' consumers of {subscription.name} stop")

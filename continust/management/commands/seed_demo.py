"""seed_demo: demo data a visitor understands in a minute; running it twice changes nothing.

- ``pricing``: a pricing configuration edited on ``main``, with a ``summer-sale``
  feature branch merged back, and two branches merged into each other both ways
  (a criss-cross), so merge bases come in pairs.
- ``accounts/alice``, ``accounts/bob``, ``ledger``: transfers whose debit causes
  a credit on the other account and an entry in the ledger, across streams.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser
from django.db import transaction

from continust.log import statistics
from continust.log.policy import make_policy
from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.management.base import ContinustCommand, Scope
from continust.models import Project, Role, Stream, Version
from continust.retention import compaction
from continust.retention.policies import set_policy

_NS = uuid.UUID("0c7d9a52-64f1-4c0e-8d7e-5b0f4f3a9e21")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class _Clock:
    """Hand out demo timestamps an hour apart, so the time axis reads like real work."""

    def __init__(self) -> None:
        self.moment = START

    def tick(self) -> datetime:
        self.moment += timedelta(hours=1)
        return self.moment


def _event(
    name: str,
    type: str,
    payload: dict[str, Any],
    actor: str,
    clock: _Clock,
    causation: uuid.UUID | None = None,
) -> NewEvent:
    return NewEvent(
        type=type,
        payload=payload,
        id=uuid.uuid5(_NS, name),
        actor=actor,
        timestamp=clock.tick(),
        causation=causation,
    )


class Command(ContinustCommand):
    help = "Create the demo project (user demo, password demo) with pricing and bank streams."
    needs_project = False

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--password", default="demo", help="the demo user's password")

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username="demo").first()
        if user is None:
            user = user_model.objects.create_user("demo", password=options["password"])
        if Project.objects.filter(slug="demo").exists():
            self.emit(options, {"created": False}, "the demo project exists already")
            return
        with transaction.atomic():
            project = create_project("demo", "Demo: pricing and bank accounts", owner=user)
            add_member(project, user, Role.ADMIN)
            clock = _Clock()
            _seed_pricing(create_stream(project, "pricing"), clock)
            _seed_accounts(project, clock)
            _seed_sensor(create_stream(project, "sensors/greenhouse"), clock, user.username)
        statistics.refresh()
        self.emit(options, {"created": True}, "seeded the demo project: log in as demo / demo")


def _seed_pricing(stream: Stream, clock: _Clock) -> None:
    def put(
        name: str, type: str, payload: dict[str, Any], actor: str, branch: str = "main"
    ) -> Version:
        event = _event(name, type, payload, actor, clock)
        return append(stream, [event], branch=branch).versions[0]

    base = put(
        "p1",
        "pricing.created",
        {
            "currency": "EUR",
            "tiers": [
                {"name": "basic", "price": 9},
                {"name": "pro", "price": 29},
                {"name": "team", "price": 99},
            ],
            "trial_days": 14,
        },
        "maria",
    )
    put(
        "p2",
        "tier.repriced",
        {
            "tiers": [
                {"name": "basic", "price": 10},
                {"name": "pro", "price": 29},
                {"name": "team", "price": 99},
            ]
        },
        "maria",
    )
    fork(stream, "summer-sale", base, actor="jon")
    put(
        "p3",
        "discount.added",
        {"discount": {"code": "SUMMER", "percent": 20}},
        "jon",
        "summer-sale",
    )
    put("p4", "trial.extended", {"trial_days": 30}, "jon", "summer-sale")
    put("p5", "currency.changed", {"vat_included": True}, "maria")
    merge(stream, "summer-sale", "main", actor="maria", timestamp=clock.tick())
    put("p6", "discount.ended", {"discount": None}, "maria")
    # A criss-cross: two branches from one version, each merged into the other.
    head = stream.branches.get(name="main").head
    fork(stream, "enterprise", head, actor="ana")
    fork(stream, "annual", head, actor="li")
    put("p7", "tier.added", {"enterprise": {"price": 499, "seats": 50}}, "ana", "enterprise")
    put("p8", "billing.annual", {"annual_discount_percent": 15}, "li", "annual")
    fork(stream, "enterprise-draft", stream.branches.get(name="enterprise").head, actor="li")
    merge(stream, "annual", "enterprise", actor="ana", timestamp=clock.tick())
    merge(stream, "enterprise-draft", "annual", actor="li", timestamp=clock.tick())
    put("p9", "seats.raised", {"enterprise": {"seats": 100}}, "ana", "enterprise")
    put("p10", "annual.tweaked", {"annual_discount_percent": 17}, "li", "annual")
    merge(stream, "enterprise", "main", actor="maria", timestamp=clock.tick())
    merge(stream, "annual", "main", actor="maria", timestamp=clock.tick())
    put("p11", "trial.shortened", {"trial_days": 21}, "maria")


def _seed_accounts(project: Project, clock: _Clock) -> None:
    alice = create_stream(project, "accounts/alice")
    bob = create_stream(project, "accounts/bob")
    ledger = create_stream(project, "ledger", reducer="patch")
    append(
        alice, [_event("a0", "account.opened", {"owner": "Alice", "balance": 500}, "bank", clock)]
    )
    append(bob, [_event("b0", "account.opened", {"owner": "Bob", "balance": 100}, "bank", clock)])
    append(
        ledger,
        [
            _event(
                "l0",
                "ledger.opened",
                {"patch": [{"op": "add", "path": "/entries", "value": []}]},
                "bank",
                clock,
            )
        ],
    )
    balances = {"alice": 500, "bob": 100}
    streams = {"alice": alice, "bob": bob}
    transfers = [
        ("t1", "alice", "bob", 120, "rent share"),
        ("t2", "bob", "alice", 30, "lunch"),
        ("t3", "alice", "bob", 45, "concert tickets"),
    ]
    for name, source, target, amount, memo in transfers:
        request = _event(
            f"{name}-req",
            "transfer.requested",
            {"from": source, "to": target, "amount": amount, "memo": memo},
            source,
            clock,
        )
        balances[source] -= amount
        balances[target] += amount
        debit = _event(
            f"{name}-debit",
            "account.debited",
            {"balance": balances[source], "last_transfer": name},
            "bank",
            clock,
            causation=request.id,
        )
        append(streams[source], [request, debit])
        credit = _event(
            f"{name}-credit",
            "account.credited",
            {"balance": balances[target], "last_transfer": name},
            "bank",
            clock,
            causation=debit.id,
        )
        append(streams[target], [credit])
        entry = {"transfer": name, "from": source, "to": target, "amount": amount}
        append(
            ledger,
            [
                _event(
                    f"{name}-ledger",
                    "ledger.entry",
                    {"patch": [{"op": "add", "path": "/entries/-", "value": entry}]},
                    "bank",
                    clock,
                    causation=credit.id,
                )
            ],
        )


def _seed_sensor(stream: Stream, clock: _Clock, actor: str) -> None:
    """A greenhouse sensor under an ephemeral policy: only its last readings are kept, the
    older ones compacted into one released run that still leads back to the root."""
    readings = [
        _event(
            f"s{n}",
            "reading",
            {"celsius": round(18 + 6 * ((n * 7) % 13) / 13, 1), "humidity": 40 + (n * 11) % 30},
            "sensor",
            clock,
        )
        for n in range(200)
    ]
    append(stream, readings)
    set_policy(stream, make_policy("ephemeral", horizon_versions=40), actor=actor)
    compaction.run(compaction.request(stream, actor=actor).pk)

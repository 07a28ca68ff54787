"""seed_demo: demo data a visitor understands in a minute; running it twice changes nothing.

- ``pricing``: a pricing configuration edited on ``main``, with a ``summer-sale``
  feature branch merged back, and two branches merged into each other both ways
  (a criss-cross), so merge bases come in pairs.
- ``accounts/alice``, ``accounts/bob``, ``ledger``: transfers whose debit causes
  a credit on the other account and an entry in the ledger, across streams.
- ``sensors/greenhouse``: readings under an ephemeral policy, compacted.

Unless ``--small`` (the streams above only, for tests), also:

- ``inventory``: a long-lived warehouse stock stream of over 5,000 versions on main, with a
  restock branch forked and merged back every few days and a second warehouse's
  branch that takes main in now and then, written with the store's batch append;
- an approved review of a week of inventory movements;
- a finished replay of ``pricing`` without its discount event;
- a pipeline run (``stock-moves``) counting inventory events per type and day.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser
from django.db import transaction

from continust.audit import reviews
from continust.log import statistics
from continust.log.policy import make_policy
from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import NewEvent, append, fork, merge
from continust.management.base import ContinustCommand, Scope
from continust.models import Project, Role, Stream, Version
from continust.pipelines import control
from continust.pipelines.runner import run_pipeline
from continust.replays import replay
from continust.retention import compaction
from continust.retention.policies import set_policy

_NS = uuid.UUID("0c7d9a52-64f1-4c0e-8d7e-5b0f4f3a9e21")
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class _Clock:
    """Hand out demo timestamps an hour apart (or ``step``), so the time axis reads like
    real work."""

    def __init__(self, step: timedelta = timedelta(hours=1)) -> None:
        self.moment = START
        self.step = step

    def tick(self) -> datetime:
        self.moment += self.step
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
        parser.add_argument(
            "--small",
            action="store_true",
            help="only the small streams (no inventory, review, replay or pipeline): for tests",
        )

    def run(self, scope: Scope, options: dict[str, Any]) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username="demo").first()
        if user is None:
            user = user_model.objects.create_user("demo", password=options["password"])
        if Project.objects.filter(slug="demo").exists():
            self.emit(options, {"created": False}, "the demo project exists already")
            return
        with transaction.atomic():
            project = create_project(
                "demo", "Demo: pricing, accounts, sensors and inventory", owner=user
            )
            add_member(project, user, Role.ADMIN)
            clock = _Clock()
            _seed_pricing(create_stream(project, "pricing"), clock)
            _seed_accounts(project, clock)
            _seed_sensor(create_stream(project, "sensors/greenhouse"), clock, user.username)
            if not options["small"]:
                inventory = create_stream(project, "inventory")
                heads = _seed_inventory(inventory)
        # The planner should know the tables' new sizes before anyone reads them.
        statistics.refresh()
        if not options["small"]:
            _seed_review(inventory, heads, user.username)
            _seed_replay(project, user.username)
            _seed_pipeline(project, user.username)
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


SKUS = [f"sku-{n:03d}" for n in range(24)]
ROUNDS = 50
MAIN_EVENTS = 100  # per round, one batch
RESTOCK_EVERY = 5  # rounds; a restock branch of RESTOCK_EVENTS merged back into main
RESTOCK_EVENTS = 40
WAREHOUSE_EVENTS = 6  # per round on warehouse-b, which takes main in every 5 rounds


def _seed_inventory(stream: Stream) -> dict[int, Version]:
    """Over 5,000 versions of warehouse stock: main moves stock in batches, restock
    branches touch only their own key (so merges never conflict), and ``warehouse-b``
    lives beside main for the whole history. Returns main's head after each round."""
    clock = _Clock(step=timedelta(minutes=15))
    on_hand = {sku: 20 + (n * 7) % 40 for n, sku in enumerate(SKUS)}
    counter = 0

    def movement(round_: int) -> NewEvent:
        nonlocal counter
        counter += 1
        sku = SKUS[(counter * 5) % len(SKUS)]
        if counter % 3 == 0:
            on_hand[sku] += 12
            kind = "stock.received"
        elif counter % 11 == 0:
            kind = "stock.counted"
            on_hand[sku] -= 1
        else:
            on_hand[sku] = max(0, on_hand[sku] - 1 - counter % 4)
            kind = "stock.shipped"
        return _event(
            f"inv-{counter}",
            kind,
            {"stock": {sku: on_hand[sku]}, "round": round_},
            "warehouse",
            clock,
        )

    opened = _event(
        "inv-0", "inventory.opened", {"stock": dict(on_hand), "round": 0}, "maria", clock
    )
    append(stream, [opened])
    fork(stream, "warehouse-b", stream.branches.get(name="main").head, actor="li")
    heads: dict[int, Version] = {}
    for round_ in range(1, ROUNDS + 1):
        heads[round_] = append(stream, [movement(round_) for _ in range(MAIN_EVENTS)]).versions[-1]
        append(
            stream,
            [
                _event(
                    f"inv-b-{round_}-{n}",
                    "stock.moved",
                    {"warehouse_b": {"round": round_, "pallets": (round_ * 3 + n) % 17}},
                    "li",
                    clock,
                )
                for n in range(WAREHOUSE_EVENTS)
            ],
            branch="warehouse-b",
        )
        if round_ % RESTOCK_EVERY == 0:
            name = f"restock/round-{round_}"
            fork(stream, name, stream.branches.get(name="main").head, actor="jon")
            lines = [
                _event(
                    f"inv-r-{round_}-{n}",
                    "restock.line",
                    {"restock": {"round": round_, "lines": n + 1, "last": SKUS[n % len(SKUS)]}},
                    "jon",
                    clock,
                )
                for n in range(RESTOCK_EVENTS)
            ]
            append(stream, lines, branch=name)
            heads[round_] = merge(stream, name, "main", actor="maria", timestamp=clock.tick())
            merge(stream, "main", "warehouse-b", actor="li", timestamp=clock.tick())
    return heads


def _seed_review(stream: Stream, heads: dict[int, Version], reviewer: str) -> None:
    """An approved review of what main gained in round 45: its movements, a restock
    branch and the merge that brought it in."""
    review = reviews.open_review(
        stream,
        head=heads[45],
        base=heads[44],
        actor="maria",
        title="Round 45 stock movements and restock",
    )
    reviews.comment(review, actor=reviewer, body="Counts match the shelf audit.")
    reviews.decide(review, actor=reviewer, decision=reviews.APPROVE, note="Looks right.")


def _seed_replay(project: Project, actor: str) -> None:
    """A finished replay of pricing as if the summer discount had never been added."""
    pricing = Stream.objects.get(project=project, name="pricing")
    started = replay.start_replay(pricing, end="main", skip_types=["discount.added"], actor=actor)
    replay.run(started.pk, worker="seed_demo")


def _seed_pipeline(project: Project, actor: str) -> None:
    """A pipeline that counted the inventory's events per type and day, caught up."""
    pipeline = control.create_pipeline(
        project,
        "stock-moves",
        definition="event-counts",
        params={
            "streams": ["inventory"],
            "window": {"type": "tumbling", "size_ms": 86_400_000, "out_of_orderness_ms": 5000},
        },
        actor=actor,
    )
    run_pipeline(pipeline.pk, worker="seed_demo", until_caught_up=True, enable=True)

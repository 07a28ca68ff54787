"""Time travel: a branch's state as of a moment (recorded or event time) or a log position,
checked against a brute-force model of random histories with forks and merges; and a whole
project as of a log position, causally consistent."""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from continust.log.projects import create_stream
from continust.log.states import state_of
from continust.log.store import NewEvent, append, fork, merge
from continust.models import Branch, Event
from continust.read.as_of import AsOf, Clock, causal_bounds, head_as_of, project_as_of
from continust.read.project_log import START, LogPosition, read_log
from tests.conftest import put


def log_end(project) -> LogPosition:
    after = START
    while True:
        page = read_log(project, after, limit=1000)
        after = page.next
        if page.caught_up:
            return after


@dataclass
class Move:
    """What the model knows of one move of a branch, on every clock."""

    state: dict[str, Any]
    event_time: Any
    position: LogPosition
    recorded: Any  # a moment just after the move was recorded


def expected(moves: list[Move], clock: str, when: Any) -> dict[str, Any] | None:
    """The brute force: the state of the last move the moment had seen, on that clock."""
    key = {"recorded": "recorded", "event": "event_time", "position": "position"}[clock]
    seen = [m for m in moves if getattr(m, key) <= when]
    return seen[-1].state if seen else None


def actual(stream, branch: str, clock: str, when: Any) -> dict[str, Any] | None:
    if clock == "position":
        version = head_as_of(stream, branch, AsOf(position=when))
    else:
        version = head_as_of(stream, branch, AsOf(moment=when, clock=Clock(clock)))
    return None if version is None else state_of(version)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_as_of_matches_a_brute_force_model_of_random_histories(project, seed):
    rng = random.Random(seed)
    stream = create_stream(project, f"random{seed}")
    model: dict[str, list[Move]] = {}  # branch -> its moves, oldest first
    heads: dict[str, tuple[dict[str, Any], Any, LogPosition]] = {}
    moments: list[tuple[str, Any]] = []
    clock = timezone.now() - timedelta(days=1)
    for step in range(24):
        clock += timedelta(minutes=rng.choice([1, 2, 3]))
        names = sorted(heads)
        choice = rng.random() if names else 0.0
        if choice < 0.6 or len(names) < 1:
            branch = rng.choice(names) if names and rng.random() < 0.8 else "main"
            append(stream, [NewEvent("set", {f"k{step}": step}, timestamp=clock)], branch=branch)
            state = {**heads.get(branch, ({}, None, START))[0], f"k{step}": step}
            heads[branch] = (state, clock, log_end(project))
        elif choice < 0.8:
            source = rng.choice(names)
            branch = f"b{step}"
            fork(stream, branch, Branch.objects.get(stream=stream, name=source).head)
            heads[branch] = heads[source]
        else:
            into, source = rng.sample(names, 2) if len(names) > 1 else (names[0], names[0])
            if source == into or set(heads[source][0]) <= set(heads[into][0]):
                continue
            merge(stream, source, into, timestamp=clock)
            state = {**heads[into][0], **heads[source][0]}
            heads[into] = (state, clock, log_end(project))
            branch = into
        state, event_time, position = heads[branch]
        model.setdefault(branch, []).append(Move(state, event_time, position, timezone.now()))
        moments.append(("recorded", timezone.now()))
        moments.append(("event", clock))
        moments.append(("position", log_end(project)))
    moments += [("recorded", timezone.now() - timedelta(days=2)), ("position", START)]
    moments += [("event", m.event_time) for moves in model.values() for m in moves]
    checked = 0
    for branch, moves in model.items():
        for clock_name, when in moments:
            assert actual(stream, branch, clock_name, when) == expected(moves, clock_name, when), (
                branch,
                clock_name,
                when,
            )
            checked += 1
    assert checked > 100


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_state_command_travels_in_time(project, stream):
    put(stream, {"a": 1})
    between = timezone.now()
    middle = log_end(project)
    put(stream, {"b": 2})
    scope = ["--project", "acme", "--stream", "pricing"]
    assert json.loads(run("state", *scope, "main")) == {"a": 1, "b": 2}
    assert json.loads(run("state", *scope, "--as-of", between.isoformat())) == {"a": 1}
    assert json.loads(run("state", *scope, "--as-of-position", str(middle))) == {"a": 1}
    late = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    assert json.loads(run("state", *scope, "--as-of", late, "--clock", "event")) == {
        "a": 1,
        "b": 2,
    }
    whole = json.loads(run("state", "--project", "acme", "--as-of-position", str(middle), "--json"))
    assert [(s["stream"], s["state"]) for s in whole["streams"]] == [("pricing", {"a": 1})]
    for args, message in [
        ([*scope, "--as-of", "2000-01-01T00:00Z"], "had no version"),
        ([*scope, "--as-of", "yesterday"], "RFC 3339"),
        ([*scope, "--as-of-position", "1"], "cursor"),
        ([*scope, "--as-of", between.isoformat(), "--as-of-position", "0"], "not both"),
        ([*scope, "main", "--as-of", between.isoformat()], "not both"),
        (["--project", "acme", "--as-of", between.isoformat()], "--as-of-position"),
    ]:
        with pytest.raises(CommandError, match=message):
            run("state", *args)


@pytest.mark.django_db
def test_the_project_as_of_a_position_leaves_out_what_was_caused_after_it(project, stream):
    other = create_stream(project, "other")
    cause = uuid.uuid4()
    append(stream, [NewEvent("set", {"a": 1}, id=cause)])
    put(other, {"x": 0})
    middle = log_end(project)
    append(other, [NewEvent("set", {"x": 1}, causation=cause)])
    found = {f.stream.name: f for f in project_as_of(project, middle)}
    assert state_of(found["pricing"].version) == {"a": 1}
    assert state_of(found["other"].version) == {"x": 0}
    assert causal_bounds(project, log_end(project)) == {}  # every cause is included


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_an_effect_ordered_before_its_cause_is_cut_with_what_follows(project, stream):
    """On PostgreSQL a transaction that wrote before its cause committed orders before it:
    as of a position between the two, the effect (and its stream after it) is left out."""
    other = create_stream(project, "other")
    put(other, {"x": 0})
    cause = uuid.uuid4()
    with transaction.atomic():
        put(stream, {"early": True})  # this transaction has its id now

        def write_cause() -> None:
            try:
                append(create_stream(project, "causes"), [NewEvent("set", {"c": 1}, id=cause)])
            finally:
                connections.close_all()

        writer = threading.Thread(target=write_cause)
        writer.start()
        writer.join()
        append(other, [NewEvent("set", {"x": 1}, causation=cause)])
    effect = Event.objects.get(causation_id=cause)
    cause_event = Event.objects.get(id=cause)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tx::text::bigint FROM continust_event"
            " WHERE position IN (%s, %s) ORDER BY position",
            [cause_event.position, effect.position],
        )
        tx_cause, tx_effect = (row[0] for row in cursor.fetchall())
    assert tx_effect < tx_cause  # the effect orders first in the log
    between = LogPosition(tx_effect, 2**63 - 1)
    found = {f.stream.name: f for f in project_as_of(project, between)}
    assert state_of(found["other"].version) == {"x": 0}  # the effect is cut
    assert found["other"].bound < LogPosition(tx_effect, effect.position)
    assert state_of(found["pricing"].version) == {"early": True}
    assert found["causes"].version is None
    # Past every transaction (log_end would wait for any left open on the server).
    everything = {f.stream.name: f for f in project_as_of(project, LogPosition(2**63 - 1, 0))}
    assert state_of(everything["other"].version) == {"x": 1}

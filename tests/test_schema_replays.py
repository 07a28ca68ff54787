"""A replay that folds with upcasting: the result in the newest shape, diffed against the
original before it is promoted; verify passes on both."""

from __future__ import annotations

import pytest

from continust.audit import event_types
from continust.audit.integrity import verify
from continust.core.errors import InvalidEvent
from continust.log.store import NewEvent, append
from continust.models import Event, Stream
from continust.replays import replay as replays

pytestmark = pytest.mark.django_db

PRICE = {"type": "object", "properties": {"price": {"type": "integer"}}}
AMOUNT = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}
RENAME = [{"op": "move", "from": "/price", "path": "/amount"}]


def loaded(stream):
    return Stream.objects.select_related("project").get(pk=stream.pk)


def test_a_replay_with_upcasting_folds_the_newest_shape_and_verify_passes(project, stream):
    """main: r(price 10) - a(price 12) - [evolve] - b(amount 14)"""
    event_types.register(project, "priced", PRICE, actor="alice")
    append(loaded(stream), [NewEvent(type="priced", payload={"price": 10})])
    append(loaded(stream), [NewEvent(type="priced", payload={"price": 12})])
    event_types.evolve(project, "priced", AMOUNT, patch=RENAME, actor="alice")
    append(loaded(stream), [NewEvent(type="priced", payload={"amount": 14})])
    hashes = list(
        Event.objects.filter(stream=stream).order_by("seq").values_list("hash", flat=True)
    )

    plain = replays.start_replay(loaded(stream), end="main")
    replays.run(plain.pk)
    assert {c.path for c in replays.shadow_diff(replays.get_replay(project, plain.pk))} == set()

    replay = replays.start_replay(loaded(stream), end="main", upcast=True)
    assert replay.upcast_to == {"priced": 2}
    replays.run(replay.pk)
    replay = replays.get_replay(project, replay.pk)
    assert replay.status == "done"
    assert replay.shadow_head.state.data == {"amount": 14}
    changes = {c.path: c for c in replays.shadow_diff(replay)}
    assert set(changes) == {"/price"}  # the original kept price 12 beside amount 14
    assert verify(project).ok
    replays.promote(replay, actor="alice")
    append(loaded(stream), [NewEvent(type="priced", payload={"amount": 15})])
    stored = list(
        Event.objects.filter(stream=stream).order_by("seq").values_list("hash", flat=True)
    )
    assert stored[: len(hashes)] == hashes
    assert verify(project).ok


def test_a_replay_with_upcasting_needs_an_evolved_type(project, stream):
    append(loaded(stream), [NewEvent(type="priced", payload={"price": 10})])
    with pytest.raises(InvalidEvent, match="nothing to upcast"):
        replays.start_replay(loaded(stream), end="main", upcast=True)
    event_types.register(project, "priced", PRICE, actor="alice")
    with pytest.raises(InvalidEvent, match="nothing to upcast"):
        replays.start_replay(loaded(stream), end="main", upcast=True)

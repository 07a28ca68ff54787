"""Replays and retention: shadow versions never eat into a branch's horizon, and a
finished replay's shadow branch can be discarded (recorded in the audit stream)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from continust.audit.integrity import verify
from continust.audit.trail import AUDIT_STREAM
from continust.core.errors import InvalidEvent, StateReleased
from continust.log.policy import make_policy
from continust.log.store import NewEvent, append
from continust.models import Event, Replay, ReplayStatus, Stream, Version
from continust.replays import replay as replays
from continust.retention import compaction
from continust.retention.policies import set_policy
from tests.conftest import put

pytestmark = pytest.mark.django_db


def cancelled_replay(stream: Stream, settings: Any, monkeypatch: Any) -> Replay:
    """A replay from the root of main, cancelled after it wrote 40 versions."""
    settings.CONTINUST_REPLAY_CHUNK_EVENTS = 20
    settings.CONTINUST_REPLAY_CHUNK_DELAY_MS = 1
    replay = replays.start_replay(stream, end="main")
    calls = []

    def pause(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 2:
            replays.cancel(Replay.objects.get(pk=replay.pk))

    monkeypatch.setattr(replays.time, "sleep", pause)
    assert replays.run(replay.pk) == ReplayStatus.CANCELLED
    replay.refresh_from_db()
    assert replay.written == 40
    return replay


@pytest.fixture
def ephemeral(stream: Stream) -> tuple[Stream, list[Version]]:
    versions = put(stream, *({"n": n} for n in range(60)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=40), actor="alice")
    return stream, versions


def released_by(plan: compaction.Plan) -> set[int]:
    return {v for run in plan.runs for v in run}


def test_a_cancelled_replay_does_not_push_main_out_of_its_horizon(
    ephemeral: Any, settings: Any, monkeypatch: Any
) -> None:
    stream, versions = ephemeral
    cancelled_replay(stream, settings, monkeypatch)
    released = released_by(compaction.plan(stream))
    newest = {v.pk for v in versions[-40:]}
    assert not released & newest
    assert released == {v.pk for v in versions[:20]}


def test_discarding_a_cancelled_replay_makes_its_versions_releasable(
    ephemeral: Any, settings: Any, monkeypatch: Any
) -> None:
    stream, versions = ephemeral
    replay = cancelled_replay(stream, settings, monkeypatch)
    shadow = set(Version.objects.filter(branch=replay.shadow_branch).values_list("id", flat=True))
    assert not released_by(compaction.plan(stream)) & shadow
    preview = replays.discard_preview(replay)
    assert (preview.versions, preview.shadow_branch, preview.releasable) == (
        40,
        replay.shadow_branch,
        True,
    )
    replays.discard(replay, actor="alice")
    assert shadow <= released_by(compaction.plan(stream))
    record = Event.objects.get(stream__name=AUDIT_STREAM, type=replays.DISCARD_EVENT)
    assert record.actor == "alice"
    assert record.payload == {
        "stream": stream.name,
        "replay": replay.pk,
        "shadow_branch": replay.shadow_branch,
        "shadow_head": replay.shadow_head_id,
        "versions": 40,
    }
    job = compaction.run(compaction.request(stream, actor="alice").pk)
    assert job.versions_released == 20 + 40
    assert not ({v.pk for v in versions[-40:]} & released_by(compaction.plan(stream)))
    assert verify(stream.project).ok
    with pytest.raises(InvalidEvent, match="already discarded"):
        replays.discard(replay, actor="alice")


def test_only_a_finished_unpromoted_replay_is_discarded(stream: Stream) -> None:
    put(stream, *({"n": n} for n in range(3)))
    replay = replays.start_replay(stream, end="main")
    with pytest.raises(InvalidEvent, match="cancel it before discarding"):
        replays.discard(replay, actor="alice")
    replays.run(replay.pk)
    replay.refresh_from_db()
    other = replays.start_replay(stream, end="main")
    replays.run(other.pk)
    other.refresh_from_db()
    replays.discard(other, actor="alice")
    with pytest.raises(InvalidEvent, match="was discarded"):
        replays.promote(other)
    replays.promote(replay, actor="alice")
    with pytest.raises(InvalidEvent, match="was promoted"):
        replays.discard(replay, actor="alice")
    assert Event.objects.filter(type=replays.DISCARD_EVENT).count() == 1


def test_the_dry_run_bytes_agree_with_what_the_compaction_measures(stream: Stream) -> None:
    """The dry run's bytes and the footprint's fall (bytes before - after) agree within 10%."""
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    # Small states and payloads, where a row's own bytes outweigh its JSON, and a few
    # large ones that the database compresses.
    put(stream, *({"n": n} for n in range(100)))
    put(
        stream,
        *(
            {f"k{n % 12}": " ".join(rng.choice(words) for _ in range(rng.randrange(1, 600)))}
            for n in range(50)
        ),
    )
    set_policy(stream, make_policy("ephemeral", horizon_versions=30), actor="alice")
    planned = compaction.plan(stream)
    assert planned.versions_released > 100 and not planned.uncounted
    job = compaction.run(compaction.request(stream, actor="alice").pk)
    measured = job.bytes_before - job.bytes_after
    assert job.versions_released == planned.versions_released
    assert abs(planned.bytes_released - measured) <= 0.1 * measured, (
        planned.bytes_released,
        measured,
    )


def test_a_replay_from_the_root_of_a_compacted_stream_names_where_it_can_start(
    stream: Stream,
) -> None:
    versions = put(stream, *({"n": n} for n in range(10)))
    set_policy(stream, make_policy("ephemeral", horizon_versions=4), actor="alice")
    compaction.run(compaction.request(stream, actor="alice").pk)
    oldest = versions[6]  # v1..v6 released: v7 is the oldest kept
    assert replays.default_start(stream) == str(oldest.pk)
    with pytest.raises(
        StateReleased,
        match=f"the oldest a replay up to version {versions[-1].pk} can start from is "
        f"version {oldest.pk}",
    ):
        replays.start_replay(stream, end="main")
    assert replays.start_replay(stream, start=replays.default_start(stream), end="main").total == 3


def test_the_stream_types_are_offered_and_unknown_ones_named(stream: Stream) -> None:
    append(stream, [NewEvent("price.set", {"p": 1}), NewEvent("note.added", {"n": "x"})])
    assert replays.event_types(stream) == ["note.added", "price.set"]
    assert replays.unknown_types(stream, ["price.set", "price.sett", " "]) == ["price.sett"]

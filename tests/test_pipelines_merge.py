"""merge: async streams into one in arrival order, each input's order kept, nothing lost."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from continust.pipelines.merge import MergeError, merge


async def ticking(name: str, delays: list[float], fail_after: int | None = None):
    """Yield name0, name1, ... after each delay; raise after ``fail_after`` items."""
    for i, delay in enumerate(delays):
        if fail_after is not None and i == fail_after:
            raise RuntimeError(f"{name} broke")
        await asyncio.sleep(delay)
        yield f"{name}{i}"


async def collect(stream) -> list:
    return [item async for item in stream]


def run(coroutine):
    return asyncio.run(coroutine)


def test_items_come_out_in_arrival_order():
    """
    a: a0 ------------- a1
    b: ---- b0 - b1 ------- b2

    Each item arrives only once the one before it came out, so the order of arrival is
    this one whatever the machine's load (sleeps of a few milliseconds were not).
    """
    arrivals = ["a0", "b0", "b1", "a1", "b2"]
    arrive = {item: asyncio.Event() for item in arrivals}

    async def gated(name: str, count: int):
        for i in range(count):
            await arrive[f"{name}{i}"].wait()
            yield f"{name}{i}"

    async def scenario() -> list:
        out: list = []
        arrive[arrivals[0]].set()
        async for item in merge(gated("a", 2), gated("b", 3)):
            out.append(item)
            if len(out) < len(arrivals):
                arrive[arrivals[len(out)]].set()
        return out

    # A merge that waited for one input in turn would wait for ever: fail instead.
    assert run(asyncio.wait_for(scenario(), timeout=30)) == arrivals


def test_each_input_contributes_at_its_own_pace():
    """
    f: f0 f1 ... f19
    s: ----------------- s0 s1   (only once f19 came out)

    The slow input is held until the fast one is done, so a merge that waited for each
    input in turn would wait for ever (sleeps of a millisecond against 50 were not
    enough under load: the fast input's twenty sleeps took longer).
    """
    released = asyncio.Event()

    async def fast():
        for i in range(20):
            await asyncio.sleep(0)
            yield f"f{i}"

    async def slow():
        for i in range(2):
            await released.wait()
            yield f"s{i}"

    async def scenario() -> list:
        out: list = []
        async for item in merge(fast(), slow()):
            out.append(item)
            if item == "f19":
                released.set()
        return out

    out = run(asyncio.wait_for(scenario(), timeout=30))
    assert out == [f"f{i}" for i in range(20)] + ["s0", "s1"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 3), max_size=8), min_size=1, max_size=5), st.integers(0, 2**32)
)
def test_every_input_keeps_its_order_and_nothing_is_lost(delays, seed):
    rng = random.Random(seed)

    async def source(index, ticks):
        for n, tick in enumerate(ticks):
            for _ in range(tick + rng.randrange(2)):
                await asyncio.sleep(0)
            yield (index, n)

    out = run(collect(merge(*(source(i, d) for i, d in enumerate(delays)))))
    for index, ticks in enumerate(delays):
        assert [n for i, n in out if i == index] == list(range(len(ticks)))
    assert len(out) == sum(map(len, delays))


def test_an_input_that_ends_early_leaves_the_others_running():
    out = run(collect(merge(ticking("a", [0.001]), ticking("b", [0.002] * 5), ticking("c", []))))
    assert sorted(out) == ["a0", "b0", "b1", "b2", "b3", "b4"]
    assert [x for x in out if x[0] == "b"] == ["b0", "b1", "b2", "b3", "b4"]


def test_a_failing_input_is_reported_after_the_others_drained():
    seen: list[str] = []

    async def scenario():
        with pytest.raises(MergeError) as caught:
            async for item in merge(
                ticking("a", [0.001] * 5, fail_after=2), ticking("b", [0.003] * 6)
            ):
                seen.append(item)
        return caught.value

    error = run(scenario())
    assert [x for x in seen if x[0] == "a"] == ["a0", "a1"]
    assert [x for x in seen if x[0] == "b"] == [f"b{i}" for i in range(6)]  # none lost
    assert list(error.failures) == [0]
    assert isinstance(error.__cause__, RuntimeError) and "a broke" in str(error)


def test_fail_fast_raises_at_once():
    async def scenario():
        seen = []
        with pytest.raises(MergeError):
            async for item in merge(
                ticking("a", [0.001] * 2, fail_after=1), ticking("b", [0.05] * 5), fail_fast=True
            ):
                seen.append(item)
        return seen

    assert run(scenario()) == ["a0"]


def test_labelled_items_name_their_input():
    out = run(collect(merge(ticking("a", [0.001]), ticking("b", [0.005]), labelled=True)))
    assert out == [(0, "a0"), (1, "b0")]


def test_a_slow_consumer_holds_every_input_back():
    produced = {"a": 0, "b": 0}

    async def counting(name):
        for i in range(100):
            produced[name] += 1
            yield i

    async def scenario():
        taken = 0
        async for _ in merge(counting("a"), counting("b")):
            taken += 1
            await asyncio.sleep(0.001)
            # One item per input at most is asked for ahead of the consumer.
            assert produced["a"] + produced["b"] <= taken + 2
            if taken == 20:
                break

    run(scenario())


def test_closing_the_merge_closes_its_inputs():
    closed = []

    async def endless(name):
        try:
            while True:
                await asyncio.sleep(0.001)
                yield name
        finally:
            closed.append(name)

    async def scenario():
        stream = merge(endless("a"), endless("b"))
        async for _ in stream:
            break
        await stream.aclose()

    run(scenario())
    assert sorted(closed) == ["a", "b"]

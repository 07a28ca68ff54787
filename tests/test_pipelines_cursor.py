"""The durable cursor over the log: project filtering, re-reads, and out-of-order commits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Event
from continust.pipelines.sources import LogCursor, LogSource, position_ranges

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def write(stream, *types: str, at: int = 0) -> list[int]:
    """Append one event per type; return their positions."""
    new = [
        NewEvent(type=t, payload={stream.name: i}, timestamp=T0 + timedelta(seconds=at + i))
        for i, t in enumerate(types)
    ]
    versions = append(stream, new).versions
    return [v.event_id for v in versions]


def source_for(project, **kwargs) -> LogSource:
    source = LogSource(**kwargs)
    source.bind(project.pk)
    return source


@pytest.mark.django_db
def test_it_reads_only_the_projects_events_but_the_whole_log(alice):
    acme, other = create_project("acme", "Acme"), create_project("other", "Other")
    pricing, noise = create_stream(acme, "pricing"), create_stream(other, "noise")
    mine = write(pricing, "a", "b")
    write(noise, "x", "y", "z")
    mine += write(pricing, "c")
    source = source_for(acme)
    poll = source.poll(limit=100)
    assert [e.position for e in poll.events] == mine
    assert [(e.stream, e.type) for e in poll.events] == [("pricing", t) for t in "abc"]
    assert poll.events[0].ts == int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    assert poll.events[0].payload == {"pricing": 0}
    assert poll.cursor["position"] == Event.objects.latest("position").position
    assert poll.caught_up


@pytest.mark.django_db
def test_it_reads_in_polls_of_at_most_the_limit(alice):
    acme = create_project("acme", "Acme")
    positions = write(create_stream(acme, "s"), *"abcdefg")
    source = source_for(acme)
    seen = []
    while True:
        poll = source.poll(limit=3)
        seen += [e.position for e in poll.events]
        if poll.caught_up:
            break
    assert seen == positions
    assert source.poll(limit=3).events == []


@pytest.mark.django_db
def test_it_narrows_to_streams_and_types(alice):
    acme = create_project("acme", "Acme")
    a, b = create_stream(acme, "a"), create_stream(acme, "b")
    write(a, "keep", "drop")
    kept = write(b, "keep")
    write(b, "drop")
    source = source_for(acme, streams=["b"], types=["keep"])
    assert [e.position for e in source.poll(limit=100).events] == kept


@pytest.mark.django_db
def test_it_reads_a_checkpointed_epoch_again(alice):
    acme = create_project("acme", "Acme")
    positions = write(create_stream(acme, "s"), *"abcde")
    source = source_for(acme)
    wanted = [positions[0], positions[1], positions[3]]
    again = source.fetch(position_ranges(wanted))
    assert [e.position for e in again] == wanted


def test_positions_compress_into_ranges():
    assert position_ranges([5, 1, 2, 3, 9, 8]) == [[1, 3], [5, 5], [8, 9]]
    assert position_ranges([]) == []


def test_a_cursor_survives_its_json():
    cursor = LogCursor(41, [[7, 9, 1234]])
    again = LogCursor.from_json(cursor.to_json())
    assert (again.position, again.gaps, again.missing) == (41, [[7, 9, 1234]], 3)
    assert LogCursor.from_json(None).position == 0


# --------------------------------------------------------------------------- out of order


class _Rollback(Exception):
    pass


class HeldWriter:
    """Append in a thread and keep the transaction open until told to commit or roll back."""

    def __init__(self, stream, type: str) -> None:
        self.stream, self.type = stream, type
        self.ready, self.release = threading.Event(), threading.Event()
        self.commit = True
        self.position: int | None = None
        self.thread = threading.Thread(target=self._write)

    def _write(self) -> None:
        try:
            with transaction.atomic():
                self.position = write(self.stream, self.type, at=100)[0]
                self.ready.set()
                self.release.wait(30)
                if not self.commit:
                    raise _Rollback
        except _Rollback:
            pass
        finally:
            connection.close()

    def __enter__(self) -> HeldWriter:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def finish(self, commit: bool = True) -> None:
        self.commit = commit
        self.release.set()
        self.thread.join(30)

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.finish(commit=False)


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("on SQLite one writer holds the database lock: positions commit in order")


def at_head(project) -> LogSource:
    """A source whose cursor stands at the last position drawn (earlier tests drew some)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_value FROM pg_sequences WHERE sequencename = "
            "(SELECT split_part(pg_get_serial_sequence('continust_event', "
            "'position'), '.', 2))"
        )
        (last,) = cursor.fetchone()
    source = LogSource()
    source.bind(project.pk, {"position": last or 0, "gaps": []})
    return source


def poll_until(source: LogSource, done, timeout: float = 60):
    """Poll until ``done(poll)``: giving a gap up waits for every older transaction of the
    cluster to end, and other sessions may hold one for a while."""
    deadline = time.monotonic() + timeout
    polls = []
    while True:
        polls.append(source.poll(limit=100))
        if done(polls[-1]):
            return polls
        if time.monotonic() > deadline:
            raise AssertionError(f"never done: {source.cursor}")
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_a_later_position_is_not_skipped():
    """
    position:   p1 (T1, held open)   p2 (T2, committed)
    poll 1:     gap                  delivered          <- a plain "position > cursor" reader
    T1 commits                                             would never come back for p1
    poll 2:     delivered
    """
    _postgres_only()
    acme = create_project("acme", "Acme")
    slow, fast = create_stream(acme, "slow"), create_stream(acme, "fast")
    source = at_head(acme)
    with HeldWriter(slow, "late") as held:
        p2 = write(fast, "early")[0]
        assert held.position < p2
        first = source.poll(limit=100)
        assert [e.position for e in first.events] == [p2]
        assert first.cursor["position"] == p2
        assert [gap[:2] for gap in first.cursor["gaps"]] == [[held.position, held.position]]
        assert source.poll(limit=100).events == []  # still open: still a gap, not given up
        held.finish(commit=True)
    second = source.poll(limit=100)
    assert [(e.position, e.type) for e in second.events] == [(held.position, "late")]
    assert second.gaps == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_gap_outlives_a_restart_of_the_reader():
    _postgres_only()
    acme = create_project("acme", "Acme")
    slow, fast = create_stream(acme, "slow"), create_stream(acme, "fast")
    source = at_head(acme)
    with HeldWriter(slow, "late") as held:
        write(fast, "early")
        saved = source.poll(limit=100).cursor  # committed with an epoch
        held.finish(commit=True)
    restarted = LogSource()
    restarted.bind(acme.pk, saved)
    assert [e.position for e in restarted.poll(limit=100).events] == [held.position]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_writer_leaves_a_gap_that_is_given_up():
    _postgres_only()
    acme = create_project("acme", "Acme")
    slow, fast = create_stream(acme, "slow"), create_stream(acme, "fast")
    source = at_head(acme)
    with HeldWriter(slow, "never") as held:
        write(fast, "early")
        assert source.poll(limit=100).gaps == 1
        held.finish(commit=False)
    polls = poll_until(source, lambda poll: poll.gaps == 0)
    assert all(p.events == [] for p in polls)
    assert source.cursor.gaps == []


@pytest.mark.django_db
def test_a_large_gap_that_fills_at_once_is_read_a_limit_at_a_time(alice):
    """A big transaction that committed behind later positions: its events come in polls
    of at most the limit, none lost, none twice."""
    acme = create_project("acme", "Acme")
    positions = write(create_stream(acme, "s"), *"abcdefghij")
    source = LogSource()
    # As a reader that had passed these positions while their writer was still open.
    source.bind(acme.pk, {"position": positions[-1], "gaps": [[positions[0], positions[-1], 0]]})
    seen = []
    for _ in range(10):
        poll = source.poll(limit=3)
        assert len(poll.events) <= 3
        seen += [e.position for e in poll.events]
        if poll.caught_up and not poll.events:
            break
    assert seen == positions

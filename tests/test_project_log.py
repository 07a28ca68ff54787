"""A project's log in order ($all): log positions, filters, and no event missed or
repeated when writers commit out of position order."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from continust.core.parsing import InvalidName
from continust.log import notices
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Event
from continust.read.project_log import START, LogFilter, LogPosition, read_log
from continust.read.wakeups import LogWakeups
from tests.conftest import put, write_beside


def follow(project, after=START, **kwargs):
    """Read the whole log after a position, page by page; return ids and the end."""
    seen = []
    while True:
        page = read_log(project, after, **kwargs)
        seen += [entry.event.id for entry in page.entries]
        after = page.next
        if page.caught_up:
            return seen, after


@pytest.mark.django_db
def test_log_positions_read_and_write_as_two_numbers():
    assert LogPosition.parse("12.40") == LogPosition(12, 40)
    assert LogPosition.parse("0") == START
    assert str(LogPosition(12, 40)) == "12.40"
    assert LogPosition(1, 99) < LogPosition(2, 1)
    for bad in ["", "12", "a.b", "1.2.3", "-1.2", "1.\x00"]:
        with pytest.raises(InvalidName):
            LogPosition.parse(bad)


@pytest.mark.django_db
def test_every_event_of_every_stream_once_in_order(project, stream):
    other = create_stream(project, "other")
    put(stream, {"a": 1}, {"a": 2})
    put(other, {"b": 1})
    put(stream, {"a": 3})
    elsewhere = create_stream(create_project("elsewhere"), "pricing")
    put(elsewhere, {"c": 1})
    ids, end = follow(project, limit=2)
    expected = list(
        Event.objects.filter(project=project).order_by("position").values_list("id", flat=True)
    )
    assert ids == expected and len(ids) == 4
    # Reading on from the end gives nothing new until something is appended.
    page = read_log(project, end)
    assert page.entries == [] and page.caught_up and page.next >= end
    put(other, {"b": 2})
    page = read_log(project, end)
    assert [e.event.payload for e in page.entries] == [{"b": 2}]
    assert page.entries[0].event.stream.name == "other"


@pytest.mark.django_db
def test_filters_narrow_the_page_not_the_position(project, stream):
    other = create_stream(project, "other")
    correlation = uuid.uuid4()
    append(stream, [NewEvent(type="price.set", payload={"p": 1}, actor="alice")])
    append(other, [NewEvent(type="stock.add", payload={"s": 1}, correlation=correlation)])
    append(stream, [NewEvent(type="price.cut", payload={"p": 0}, actor="bob")])

    def types(**where):
        ids, _ = follow(project, where=LogFilter(**where))
        return sorted(Event.objects.get(id=i).type for i in ids)

    assert types(stream="pricing") == ["price.cut", "price.set"]
    assert types(type_prefix="price.") == ["price.cut", "price.set"]
    assert types(actor="bob") == ["price.cut"]
    assert types(correlation=correlation) == ["stock.add"]
    first = Event.objects.filter(project=project).order_by("position").first()
    assert types(until=first.timestamp) == []
    assert len(types(since=first.timestamp - timedelta(seconds=1))) == 3


@pytest.mark.django_db(transaction=True)
def test_a_filtered_reader_that_caught_up_goes_on_past_what_it_skipped():
    stream = create_stream(create_project("skips"), "s")
    put(stream, {"a": 1}, {"a": 2})
    page = read_log(stream.project, where=LogFilter(actor="nobody"))
    assert page.entries == [] and page.caught_up
    assert page.next >= max(e.at for e in read_log(stream.project).entries)
    put(stream, {"a": 3})
    assert [e.event.payload for e in read_log(stream.project, page.next).entries] == [{"a": 3}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_writer_committing_behind_a_later_position_is_not_missed():
    """The trap of position-ordered reads: a writer draws position 10, another draws 11
    and commits first. A reader that took 11 must still get 10 once it commits."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: positions are commit order")
    project = create_project("race")
    slow, fast = create_stream(project, "slow"), create_stream(project, "fast")
    written, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                append(slow, [NewEvent(type="late", payload={"n": 1})])
                written.set()
                release.wait(30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert written.wait(30)
    append(fast, [NewEvent(type="early", payload={"n": 2})])
    early = Event.objects.get(type="early")
    seen, after = follow(project)
    # The slow writer drew the lower position; until it ends, nothing after it is settled.
    assert seen == []
    release.set()
    writer.join(30)
    late = Event.objects.get(type="late")
    assert late.position < early.position
    more, _ = follow(project, after)
    assert sorted(more, key=str) == sorted([late.id, early.id], key=str)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_follower_beside_concurrent_writers_sees_every_event_once():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    project = create_project("busy")
    streams = [create_stream(project, f"s{i}") for i in range(4)]
    done = threading.Event()

    writers = [threading.Thread(target=write_beside, args=(s, 30, 3)) for s in streams]
    for w in writers:
        w.start()
    seen, after = [], START
    with LogWakeups() as wakeups:
        while not done.is_set():
            if not any(w.is_alive() for w in writers):
                done.set()
            page = read_log(project, after, limit=7)
            seen += [e.event.id for e in page.entries]
            after = page.next
            if page.caught_up:
                wakeups.wait(0.05)
    rest, _ = follow(project, after)
    seen += rest
    assert len(seen) == len(set(seen)) == Event.objects.filter(project=project).count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_an_append_wakes_a_listener_with_its_project():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no notifications: followers poll")
    project = create_project("woken")
    stream = create_stream(project, "s")
    with LogWakeups() as wakeups:
        assert wakeups.wait(0.05) == set()
        put(stream, {"a": 1})
        assert wakeups.wait(5) == {project.pk}


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_one_statement_append_wakes_followers_after_its_commit(monkeypatch):
    """PostgreSQL commits notifying transactions one at a time, through their sync to
    disk: the append's own transaction notifies nobody, and the writer wakes the
    followers in a transaction of its own once it committed."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no notifications: followers poll")
    project = create_project("woken-after")
    stream = create_stream(project, "s")
    put(stream, {"a": 0})  # the root: the locked path, woken by the event trigger
    with LogWakeups() as wakeups:
        wakeups.wait(0.2)
        woken: list[int] = []
        monkeypatch.setattr(notices, "wake", lambda raw, project_id: woken.append(project_id))
        put(stream, {"a": 1})
        assert woken == [project.pk]  # the one-statement path, which wakes by itself
        assert wakeups.wait(0.5) == set()  # ... and its transaction sent nothing
        monkeypatch.undo()
        put(stream, {"a": 2})
        assert wakeups.wait(5) == {project.pk}


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_transaction_open_in_another_database_does_not_hold_readers_back():
    if connection.vendor != "postgresql":
        pytest.skip("one SQLite database per file")
    import psycopg

    params = connection.get_connection_params()
    params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context")}
    params["dbname"] = "postgres"
    with psycopg.connect(**params) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # holds a transaction id, open
        stream = create_stream(create_project("apart"), "s")
        put(stream, {"a": 1})
        assert [e.event.payload for e in read_log(stream.project).entries] == [{"a": 1}]
        elsewhere.rollback()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_followers_of_a_process_share_one_listening_connection():
    """200 live feeds in a web worker must not take 200 connections to wait."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no notifications: followers poll")
    import contextlib

    project = create_project("crowd")
    stream = create_stream(project, "s")

    def listening() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query = %s AND pid <> pg_backend_pid()",
                ["LISTEN continust_log"],
            )
            return cursor.fetchone()[0]

    with contextlib.ExitStack() as stack:
        followers = [stack.enter_context(LogWakeups()) for _ in range(20)]
        assert listening() == 1
        put(stream, {"a": 1})
        assert all(f.wait(5) == {project.pk} for f in followers)
    deadline = time.monotonic() + 5
    while listening() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening() == 0  # the last follower out closes it

"""Projections: registration, exactly-once batches, fencing, rebuilds, lag, CLI, explorer."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.urls import reverse

from continust.jobs import leases
from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import Event, OutboxMessage, ProjectionStatus
from continust.projections import control, registry, tables
from continust.projections.runner import PROJECTIONS, Outcome, run_projection, step
from continust.read.project_log import START, LogPosition, read_log
from tests import projections_support as support
from tests.worker import poll

# On PostgreSQL an append is read once every older transaction on the server has ended;
# other test runs sharing the server may hold one open for minutes.
SETTLED = 300


@pytest.fixture
def registered(settings):
    settings.CONTINUST_PROJECTIONS = support.SETTING
    registry.reload()
    support.Refusing.refuse = True
    yield
    settings.CONTINUST_PROJECTIONS = []
    registry.reload()


def add(stream, *types):
    return append(stream, [NewEvent(t, {"n": i}) for i, t in enumerate(types)]).versions


def table_of(row, short="seen"):
    row.refresh_from_db()
    return tables.names(row, registry.get(row.name), row.generation)[short]


def ids(project, prefix=""):
    return sorted(
        str(i)
        for i in Event.objects.filter(project=project, type__startswith=prefix).values_list(
            "id", flat=True
        )
    )


@pytest.mark.django_db
def test_bad_projection_settings_stop_with_one_line(settings):
    for entry, said in [
        ("nameonly", "not name=dotted.path"),
        ("Bad-Name=tests.projections_support.OrderLog", "not name=dotted.path"),
        ("event_counts=tests.projections_support.OrderLog", "names 'event_counts' twice"),
    ]:
        settings.CONTINUST_PROJECTIONS = [entry]
        with pytest.raises(ImproperlyConfigured, match=said):
            registry.reload()
    settings.CONTINUST_PROJECTIONS = []
    assert registry.reload().keys() == {"event_counts"}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("orders", "CONTINUST_PROJECTIONS entry 'orders' is not name=dotted.path"),
        ("event_counts=x.Y", "CONTINUST_PROJECTIONS names 'event_counts' twice"),
    ],
)
def test_a_malformed_projections_variable_stops_the_process_with_one_line(value, said):
    env = {**os.environ, "CONTINUST_PROJECTIONS": value}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "projection", "list", "--project", "x"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"ImproperlyConfigured: {said}")


@pytest.mark.django_db
def test_a_class_that_cannot_run_fails_alone_with_its_error(settings, project, stream):
    settings.CONTINUST_PROJECTIONS = [
        "missing=tests.projections_support.Nothing",
        "not_one=tests.projections_support.rows",
    ]
    try:
        registry.reload()
        add(stream, "order.a")
        rows = {row.name: row for row in control.ensure(project)}
        assert set(rows) == {"event_counts", "missing", "not_one"}
        assert run_projection(rows["missing"].pk, foreground=True) == Outcome.FAILED
        rows["missing"].refresh_from_db()
        assert "does not import" in rows["missing"].error
        assert "is not a Projection" in control.describe(rows["not_one"]).description
        assert run_projection(rows["event_counts"].pk, foreground=True) == Outcome.CAUGHT_UP
    finally:
        settings.CONTINUST_PROJECTIONS = []
        registry.reload()


@pytest.mark.django_db
def test_a_projection_gets_only_the_types_it_handles_once_each(registered, project, stream):
    add(stream, "order.placed", "note", "order.paid", "order.placed", "note")
    row = control.get_projection(project, "order_log")
    assert control.describe(row).lag == 5
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    row.refresh_from_db()
    assert row.status == ProjectionStatus.IDLE and row.events == 5 and row.generation == 1
    assert [i for i, _ in support.rows(table_of(row))] == ids(project, "order.")
    assert control.describe(row).lag == 0
    add(stream, "order.shipped", "note")
    assert control.describe(row).lag == 2
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    assert [i for i, _ in support.rows(table_of(row))] == ids(project, "order.")


@pytest.mark.django_db
def test_a_batch_that_fails_mid_way_writes_nothing_and_resumes_exactly_once(
    registered, project, stream
):
    # Batches of 3: the first commits; the second has an order event before the boom.
    add(stream, "order.a", "order.b", "order.c", "order.d", "boom", "order.e", "order.f")
    row = control.get_projection(project, "refusing")
    assert run_projection(row.pk, foreground=True) == Outcome.FAILED
    row.refresh_from_db()
    assert row.status == ProjectionStatus.FAILED and "is refused" in row.error
    assert row.error_at is not None and row.events == 3
    # Only the first batch is in the table, and the position is right after it.
    first = [e.event for e in read_log(project, START, limit=3).entries]
    assert sorted(i for i, _ in support.rows(table_of(row))) == sorted(str(e.id) for e in first)
    assert LogPosition(row.tx, row.position) == read_log(project, START, limit=3).next
    # A worker does not take a failed projection again by itself...
    assert run_projection(row.pk) == Outcome.SKIPPED
    control.wake_behind()
    row.refresh_from_db()
    assert row.status == ProjectionStatus.FAILED
    # ...a user runs it once the cause is fixed: every event lands exactly once.
    support.Refusing.refuse = False
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    seen = support.rows(table_of(row))
    assert sorted(i for i, _ in seen) == sorted(ids(project, "order.") + ids(project, "boom"))
    assert len(seen) == len({i for i, _ in seen}) == 7
    row.refresh_from_db()
    assert row.status == ProjectionStatus.IDLE and "is refused" in row.error  # the last error


@pytest.mark.django_db
def test_a_holder_whose_lease_was_taken_commits_nothing(registered, project, stream):
    add(stream, "order.a", "order.b")
    row = control.get_projection(project, "order_log")
    stale = leases.claim(PROJECTIONS, row.pk, where=leases.Q())
    assert stale is not None
    row.refresh_from_db()
    # Its lease lapses and another worker claims the projection.
    type(row).objects.filter(pk=row.pk).update(lease_expires_at=None)
    fresh = leases.claim(PROJECTIONS, row.pk, where=leases.Q())
    assert fresh is not None and fresh.fence > stale.fence
    with pytest.raises(leases.LeaseLost):
        step(stale, registry.get("order_log"), started=0, done=0)
    row.refresh_from_db()
    assert row.events == 0 and row.position == 0 and row.generation == 0


@pytest.mark.django_db
def test_a_rebuild_fills_shadow_tables_from_zero_and_swaps_them_in(registered, project, stream):
    add(stream, "order.a", "order.b", "order.c", "order.d")
    row = control.get_projection(project, "order_log")
    run_projection(row.pk, foreground=True)
    live = table_of(row)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {live}")  # the read model went wrong
    plan = control.rebuild_plan(row)
    assert plan.tables == [live] and plan.rows == 0 and plan.events == 4
    control.rebuild(row, actor="alice")
    row.refresh_from_db()
    shadow = tables.names(row, registry.get("order_log"), row.rebuild_generation)["seen"]
    assert shadow != live and row.status == ProjectionStatus.WAITING
    assert OutboxMessage.objects.filter(key=PROJECTIONS.key(row)).exists()
    # One batch in: the shadow has 3 rows, the live table still serves what it had.
    lease = leases.claim(PROJECTIONS, row.pk)
    assert lease is not None
    assert step(lease, registry.get("order_log"), started=0, done=0).rebuilding
    assert len(support.rows(shadow)) == 3 and support.rows(live) == []
    leases.release(lease, status=ProjectionStatus.WAITING)
    add(stream, "order.e")
    assert run_projection(row.pk) == Outcome.CAUGHT_UP
    row.refresh_from_db()
    assert row.rebuild_generation == 0 and row.generation == 2 and row.rebuilt_at is not None
    assert table_of(row) == shadow and live not in connection.introspection.table_names()
    assert [i for i, _ in support.rows(shadow)] == ids(project, "order.")
    assert row.events == 5 and control.describe(row).lag == 0


@pytest.mark.django_db
def test_idle_projections_behind_the_log_are_sent_to_a_worker_once(project, stream):
    assert control.wake_behind() == 0  # rows created, nothing to read
    add(stream, "order.a")
    assert control.wake_behind() == 1
    row = control.get_projection(project, "event_counts")
    assert row.status == ProjectionStatus.WAITING
    assert OutboxMessage.objects.filter(key=PROJECTIONS.key(row)).count() == 1
    assert control.wake_behind() == 0


@pytest.mark.django_db
def test_event_counts_per_type_per_day(project, stream):
    other = create_stream(project, "other")
    add(stream, "order.a", "order.a", "order.b")
    add(other, "order.a")
    row = control.get_projection(project, "event_counts")
    assert not control.activity(project).built
    run_projection(row.pk, foreground=True)
    seen = control.activity(project)
    day = Event.objects.filter(project=project).first().timestamp.date().isoformat()
    assert seen.built and seen.lag == 0
    assert seen.days == [(day, [("order.a", 3), ("order.b", 1)], 4)]
    add(other, "order.b")
    assert control.activity(project).lag == 1
    assert control.activity(project).days == seen.days  # read from the table, not the log


@pytest.mark.django_db
def test_the_command_lists_runs_and_rebuilds_after_confirmation(
    registered, project, stream, monkeypatch
):
    add(stream, "order.a", "order.b")
    out = StringIO()
    call_command("projection", "list", "--project", "acme", "--json", stdout=out)
    listed = {r["projection"]: r for r in json.loads(out.getvalue())}
    assert listed["order_log"]["lag"] == 2 and listed["event_counts"]["status"] == "idle"
    out = StringIO()
    call_command("projection", "run", "order_log", "--project", "acme", stdout=out)
    assert "caught-up" in out.getvalue() and "0 behind" in out.getvalue()
    row = control.get_projection(project, "order_log")
    live = table_of(row)
    monkeypatch.setattr("sys.stdin", StringIO(""))
    with pytest.raises(CommandError, match=f"replaces {live} \\(2 rows, 2 events"):
        call_command("projection", "rebuild", "order_log", "--project", "acme")
    row.refresh_from_db()
    assert row.rebuild_generation == 0 and row.generation == 1
    call_command("projection", "rebuild", "order_log", "--project", "acme", "--yes", stdout=out)
    row.refresh_from_db()
    assert row.generation == 2 and len(support.rows(table_of(row))) == 2
    with pytest.raises(CommandError, match="no projection 'nope'"):
        call_command("projection", "run", "nope", "--project", "acme")


@pytest.mark.django_db
def test_the_projections_page_shows_lag_and_only_admins_act(
    client, project, stream, alice, bob, charlie
):
    add(stream, "order.a", "order.b")
    url = reverse("projections", args=["acme"])
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    client.force_login(bob)
    page = client.get(url).content.decode()
    assert "event_counts" in page and "2 events behind" in page and "Rebuild" not in page
    rebuild = reverse("projection-rebuild", args=["acme", "event_counts"])
    assert client.get(rebuild).status_code == 403
    assert client.post(reverse("projection-run", args=["acme", "event_counts"])).status_code == 403
    client.force_login(alice)
    assert "Rebuild" in client.get(url).content.decode()
    row = control.get_projection(project, "event_counts")
    run_projection(row.pk, foreground=True)
    asked = client.get(rebuild).content.decode()
    assert f"replaces {table_of(row, 'daily')}" in asked and "2 event(s)" in asked
    row.refresh_from_db()
    assert row.rebuild_generation == 0
    client.post(rebuild, {"confirm": "yes"})
    row.refresh_from_db()
    assert row.rebuild_generation == 2
    assert client.get(reverse("projection-rebuild", args=["acme", "nope"])).status_code == 404


@pytest.mark.django_db
def test_the_project_page_reads_the_counts_and_says_when_they_lag(client, project, stream, bob):
    client.force_login(bob)
    page = client.get(reverse("project", args=["acme"])).content.decode()
    assert "not built yet" in page
    add(stream, "order.a", "order.b")
    run_projection(control.get_projection(project, "event_counts").pk, foreground=True)
    page = client.get(reverse("project", args=["acme"])).content.decode()
    assert "<code>order.a</code> 1" in page and "lag the log" not in page
    add(stream, "order.a")
    page = client.get(reverse("project", args=["acme"])).content.decode()
    assert "These counts lag the log by 1 event " in page and "<code>order.a</code> 1" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_writer_committing_behind_a_later_one_is_not_passed_by(registered):
    """A batch reads the log inside the transaction that moves the position: an event
    whose writer drew a lower position but commits later still gets applied."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: positions are commit order")
    project = create_project("race")
    slow, fast = create_stream(project, "slow"), create_stream(project, "fast")
    written, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                add(slow, "order.late")
                written.set()
                release.wait(30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert written.wait(30)
    add(fast, "order.early")
    row = control.get_projection(project, "order_log")
    assert run_projection(row.pk, foreground=True) == Outcome.CAUGHT_UP
    release.set()
    writer.join(30)

    # What is settled waits for every older transaction on the server (other test runs
    # may hold some open): run until both are in. One passed by would never come.
    def both_in(r):
        run_projection(r.pk, foreground=True)
        r.refresh_from_db()
        return r.events == 2

    poll(row, both_in, timeout=SETTLED, describe=lambda r: f"{r.events} event(s) in")
    assert [i for i, _ in support.rows(table_of(row))] == ids(project, "order.")
    assert control.describe(row).lag == 0


@pytest.mark.django_db(transaction=True)
def test_a_following_run_is_woken_by_appends_until_stopped(registered, project, stream):
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("the in-memory SQLite test database is not shared between threads")
    row = control.get_projection(project, "order_log")
    stop = threading.Event()
    outcomes = []

    def follower():
        try:
            outcomes.append(
                run_projection(row.pk, foreground=True, follow_seconds=math.inf, stop=stop)
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=follower)
    thread.start()
    try:
        add(stream, "order.a", "order.b")
        poll(row, lambda r: r.events == 2, timeout=SETTLED, describe=lambda r: f"{r.events}")
        add(stream, "order.c")
        poll(row, lambda r: r.events == 3, timeout=SETTLED, describe=lambda r: f"{r.events}")
        assert leases.is_live(row)  # held all along, renewed by each read
    finally:
        stop.set()
        thread.join(30)
    assert outcomes == [Outcome.STOPPED]
    assert [i for i, _ in support.rows(table_of(row))] == ids(project, "order.")

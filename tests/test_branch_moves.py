"""Branch moves: chained per branch, the only way a head changes, checked by verify.

main:  v0 -- v1 -- v2 ---- m
              \\          /
side:          s0 ------'
moves of main: append v0, append v1, append v2, merge m  (each chained to the last)
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from continust.audit.integrity import verify
from continust.log import canonical
from continust.log.store import fork, merge
from continust.models import Branch, BranchMove
from tests.conftest import put
from tests.test_integrity import tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(stream):
    v0, v1, v2 = (put(stream, {"n": n})[0] for n in range(3))
    fork(stream, "side", v1)
    put(stream, {"side": True}, branch="side")
    merge(stream, "side", "main")
    return v0, v1, v2


def test_each_branch_s_moves_form_a_chain(stream, history):
    main = Branch.objects.get(stream=stream, name="main")
    moves = list(BranchMove.objects.filter(branch=main).order_by("id"))
    assert [m.reason for m in moves] == ["append", "append", "append", "merge"]
    assert moves[0].prev_hash == canonical.GENESIS
    assert [m.prev_hash for m in moves[1:]] == [m.hash for m in moves[:-1]]
    assert main.move_hash == moves[-1].hash and main.head_id == moves[-1].new_head_id
    assert verify(stream.project).ok


def test_the_database_refuses_setting_a_head_directly(stream, history):
    v0, _, _ = history
    for sql in (
        f"UPDATE continust_branch SET head_id = {v0.pk} WHERE name = 'main'",
        "UPDATE continust_branch SET name = 'other' WHERE name = 'side'",
        "DELETE FROM continust_branch WHERE name = 'side'",
    ):
        with (
            pytest.raises(DatabaseError, match="recorded move"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert Branch.objects.get(stream=stream, name="main").head_id != v0.pk


def test_verify_finds_a_head_moved_back_behind_the_triggers(stream, history):
    _, _, v2 = history
    tamper(f"UPDATE continust_branch SET head_id = {v2.pk} WHERE name = 'main'", "continust_branch")
    report = verify(stream.project)
    assert not report.ok
    assert report.broken.where == "branch 'main'"
    assert report.broken.reason.startswith(f"head v{v2.pk} is not where")


def test_verify_finds_a_rewritten_move(stream, history):
    tamper(
        "UPDATE continust_branchmove SET actor = 'mallory' WHERE reason = 'merge'",
        "continust_branchmove",
    )
    report = verify(stream.project)
    assert not report.ok
    assert report.broken.where == "branch 'main'"
    assert report.broken.reason.startswith("move 4 (merge): hash mismatch")


def test_verify_finds_a_dropped_move(stream, history):
    first = BranchMove.objects.filter(branch__name="side").order_by("id").last()
    tamper(
        f"DELETE FROM continust_branchmove WHERE id = {first.pk}", "continust_branchmove", "delete"
    )
    report = verify(stream.project)
    assert not report.ok and "side" in report.broken.where


@pytest.mark.django_db(transaction=True)
def test_verify_while_another_writer_appends_finds_nothing_broken(stream):
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("on SQLite verify reads between writers' transactions")
    put(stream, {"n": 0})

    def another_writer() -> None:
        put(stream, {"n": 1})
        connections.close_all()

    moved: list[bool] = []

    def append_after_reading_moves(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "continust_branchmove" in sql and not moved:
            moved.append(True)
            writer = threading.Thread(target=another_writer)
            writer.start()
            writer.join()
        return result

    with connection.execute_wrapper(append_after_reading_moves):
        report = verify(stream.project)
    assert moved
    assert report.ok, report.breaks

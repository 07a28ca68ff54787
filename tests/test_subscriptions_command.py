"""The subscription command: create, list, run, reset (with confirmation), replay parked."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from continust.log.projects import create_project, create_stream
from continust.log.store import NewEvent, append
from continust.models import MessageStatus, Subscription, SubscriptionMessage
from tests.conftest import put
from tests.subscriptions_support import copies, make_sink

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = StringIO()
    call_command("subscription", *args, "--project", "shop", stdout=out)
    return out.getvalue()


def test_create_run_list_and_reset_with_confirmation():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    put(stream, {"n": 1}, {"n": 2})
    assert "created catch-up subscription copier at 0.0" in run(
        "create", "copier", "--handler", "tests.subscriptions_support.copy_to_sink"
    )
    assert "handled 2 events" in run("run", "copier", "--until-caught-up")
    put(stream, {"n": 3})
    (shown,) = json.loads(run("list", "--json"))
    assert shown["name"] == "copier" and shown["lag"] == 1 and shown["parked"] == 0
    assert "handled 1 events" in run("run", "copier", "--until-caught-up")
    assert len(copies()) == 3
    with pytest.raises(
        CommandError,
        match="Reset subscription 'copier' of shop from .* to 0.0: "
        "it will read the 3 events after 0.0 again. Nothing was changed: add --yes",
    ):
        run("reset", "copier")
    assert Subscription.objects.get().position != 0
    assert "Reset subscription 'copier'" in run("reset", "copier", "--yes")
    stored = Subscription.objects.get()
    assert (stored.position_tx, stored.position) == (0, 0)


def test_bad_input_is_one_line_and_changes_nothing():
    create_project("shop")
    for args, message in [
        (("create", "a b"), "not a subscription name"),
        (("create", "s", "--from", "x.y"), "not a number in the digits 0-9"),
        (("create", "s", "--handler", "nowhere.at_all"), "no handler"),
        (("run", "missing"), "no subscription 'missing'"),
        (("reset",), "needs the subscription's name"),
    ]:
        with pytest.raises(CommandError, match=message):
            run(*args)
    assert not Subscription.objects.exists()
    assert "created catch-up subscription mailer" in run("create", "mailer")
    with pytest.raises(CommandError, match="mailer has no handler: give one with --handler"):
        run("run", "mailer", "--until-caught-up")


def test_a_persistent_subscription_runs_from_the_cli_and_replays_parked():
    make_sink()
    stream = create_stream(create_project("shop"), "orders")
    append(stream, [NewEvent(type="boom", payload={"n": 1})])
    put(stream, {"n": 2})
    run(
        "create",
        "workers",
        "--persistent",
        "--max-attempts",
        "1",
        "--handler",
        "tests.subscriptions_support.refuse_boom",
    )
    assert "acknowledged 1, failed 0, parked 1" in run("run", "workers", "--until-caught-up")
    assert SubscriptionMessage.objects.get().status == MessageStatus.PARKED
    with pytest.raises(CommandError, match="Queue the 1 parked events of subscription 'workers'"):
        run("replay-parked", "workers")
    assert "queued 1 parked events again" in run("replay-parked", "workers", "--yes")
    out = run(
        "run",
        "workers",
        "--until-caught-up",
        "--handler",
        "tests.subscriptions_support.copy_to_sink",
    )
    assert "acknowledged 1" in out
    assert len(copies()) == 2

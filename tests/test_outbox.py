"""The outbox: two dispatchers at once send each message once, and a broker that refuses
leaves the message for later with the error recorded."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction

from continust.celery import app
from continust.jobs import outbox
from continust.models import OutboxMessage


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_send_each_message_once(monkeypatch):
    sent: Counter[str] = Counter()

    def slow_send(name: str, args: Any = None, **options: Any) -> None:
        time.sleep(0.05)  # long enough for the other dispatcher to read the same rows
        sent[args[0]] += 1

    monkeypatch.setattr(app, "send_task", slow_send)
    monkeypatch.setattr(transaction, "on_commit", lambda *a, **k: None)  # no dispatch yet
    with transaction.atomic():
        for n in range(6):
            outbox.enqueue("tests.noop", [f"m{n}"], key=f"test:{n}")
    start = threading.Barrier(2)
    counts: list[int] = []

    def dispatcher() -> None:
        start.wait()
        try:
            counts.append(outbox.dispatch())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == 6
    assert sent == Counter({f"m{n}": 1 for n in range(6)})
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_refused_message_waits_with_its_error(monkeypatch):
    def refuse(name: str, args: Any = None, **options: Any) -> None:
        raise ConnectionError("broker away")

    monkeypatch.setattr(app, "send_task", refuse)
    monkeypatch.setattr(transaction, "on_commit", lambda *a, **k: None)
    with transaction.atomic():
        outbox.enqueue("tests.noop", ["x"], key="test:x")
    assert outbox.dispatch() == 0
    message = OutboxMessage.objects.get(key="test:x")
    assert message.sent_at is None and message.attempts == 1
    assert message.last_error == "ConnectionError: broker away"

"""A client whose batch append timed out sends it again while the first is still running.

Both deliveries reach a live server at once; the stream's write lock makes one
of them write and the other find the batch already recorded.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from urllib.parse import urlparse

import pytest
from django.db import connection

from api.models import ApiToken, Scope
from continust.audit.integrity import verify
from continust.log.projects import create_project, create_stream
from continust.models import Event, Version

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

DELIVERIES = 4


def post(url: str, token: str, body: bytes) -> tuple[int, dict]:
    address = urlparse(url)
    client = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    client.request(
        "POST",
        address.path,
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = client.getresponse()
    return response.status, json.loads(response.read())


def test_concurrent_deliveries_of_one_batch_write_it_once(live_server, alice, request):
    if connection.vendor != "postgresql":
        pytest.skip("the live server shares one SQLite connection: no concurrency to test")
    request.getfixturevalue("server_sessions_closed")
    project = create_project("acme", owner=alice)
    stream = create_stream(project, "pricing")
    token = ApiToken.issue(alice, "retrying", [project], Scope.WRITE)[1]
    body = json.dumps(
        {
            "events": [
                {"id": str(uuid.uuid4()), "type": "set", "payload": {"n": n}} for n in range(200)
            ]
        }
    ).encode()
    url = f"{live_server.url}/api/projects/acme/streams/pricing/events"
    answers: list[tuple[int, dict]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(post(url, token, body)))
        for _ in range(DELIVERIES)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(status for status, _ in answers) == [200] * (DELIVERIES - 1) + [201]
    versions = {json.dumps(answer["versions"]) for _, answer in answers}
    assert len(versions) == 1, "every delivery answers the same versions"
    assert Event.objects.filter(stream=stream).count() == 200
    assert Version.objects.filter(stream=stream).count() == 200
    assert verify(project).ok

"""The admin: the log is read-only, and a stream can be appended to, forked and merged."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from continust.models import Branch, Version
from tests.conftest import put

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("root", "root@example.com", "root-password-1")
    client.force_login(user)
    return client


def test_it_lists_every_model(staff, stream):
    put(stream, {"a": 1})
    for name in ["project", "stream", "event", "version", "state", "branch"]:
        response = staff.get(reverse(f"admin:continust_{name}_changelist"))
        assert response.status_code == 200, name


def test_it_offers_no_change_to_events_and_versions(staff, stream):
    (version,) = put(stream, {"a": 1})
    assert staff.get(reverse("admin:continust_event_add")).status_code == 403
    page = staff.get(reverse("admin:continust_version_change", args=[version.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    deleted = staff.post(
        reverse("admin:continust_version_delete", args=[version.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 403
    assert Version.objects.filter(pk=version.pk).exists()


def test_it_appends_forks_and_merges(staff, stream):
    (v1,) = put(stream, {"price": 10})
    url = reverse("admin:continust_stream_append", args=[stream.pk])
    response = staff.post(url, {"branch": "main", "type": "set", "payload": '{"price": 12}'})
    assert response.status_code == 302
    staff.post(
        reverse("admin:continust_stream_fork", args=[stream.pk]), {"at": str(v1.pk), "name": "sale"}
    )
    staff.post(url, {"branch": "sale", "type": "set", "payload": '{"sale": true}'})
    merged = staff.post(
        reverse("admin:continust_stream_merge", args=[stream.pk]),
        {"source": "sale", "into": "main", "resolutions": "{}"},
    )
    assert merged.status_code == 302
    head = Branch.objects.get(stream=stream, name="main").head
    assert head.state.data == {"price": 12, "sale": True}


def test_it_shows_a_bad_payload_and_writes_nothing(staff, stream):
    url = reverse("admin:continust_stream_append", args=[stream.pk])
    response = staff.post(url, {"branch": "main", "type": "set", "payload": "[1, 2]"})
    assert response.status_code == 200
    assert b"JSON object" in response.content
    assert not Version.objects.exists()

"""The explorer's erasure: the admin page, a confirmation naming what it redacts, the
report, the version panel before and after; roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from continust.audit.erasure import set_personal
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append
from continust.models import Event, Stream, SubjectKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(project: Any) -> Stream:
    stream = set_personal(create_stream(project, "customers"), "customer", actor="alice")
    for payload in (
        {"customer": "c-1", "email": "ann@example.com"},
        {"customer": "c-2", "email": "bo@example.com"},
    ):
        append(stream, [NewEvent(type="customer.updated", payload=payload)])
    return stream


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_version_panel_shows_plain_values_then_erased(customers, alice, bob):
    version = customers.versions.order_by("id").first()
    url = f"/p/acme/s/{customers.pk}/v/{version.pk}/"
    page = client_of(bob).get(url).content.decode()
    assert "ann@example.com" in page and "$sealed" not in page
    client_of(alice).post("/p/acme/erasure/erase/?subject=c-1&reason=asked", {"confirm": "yes"})
    page = client_of(bob).get(url).content.decode()
    assert "ann@example.com" not in page and "[erased]" in page


def test_the_confirmation_names_the_subject_and_its_events(customers, alice):
    response = client_of(alice).get("/p/acme/erasure/erase/?subject=c-1&reason=asked")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Erase data subject &#x27;c-1&#x27;?" in page
    assert "1 event(s) in 1 stream(s) (customers)" in page
    assert SubjectKey.objects.get(subject="c-1").key is not None


def test_erasing_reports_the_events_and_is_audited(customers, alice):
    client = client_of(alice)
    response = client.post("/p/acme/erasure/erase/?subject=c-1&reason=GDPR+7", {"confirm": "yes"})
    # Lands on a page of its own: reloading it shows the report and erases nothing again.
    assert response.status_code == 302 and response["Location"] == "/p/acme/erasure/?erased=c-1"
    report = client.get(response["Location"])
    page = report.content.decode()
    assert report.status_code == 200
    assert "Erased c-1" in page and "customers #1 customer.updated" in page
    audit = Event.objects.get(type="subject.erased")
    assert "By alice" in page and "GDPR 7" in page and str(audit.id) in page
    assert client.get("/p/acme/erasure/?erased=nobody").status_code == 404
    assert SubjectKey.objects.get(subject="c-1").key is None
    assert Event.objects.get(type="subject.erased").payload["reason"] == "GDPR 7"


def test_erasing_twice_says_so_and_changes_nothing(customers, alice):
    client = client_of(alice)
    client.post("/p/acme/erasure/erase/?subject=c-1&reason=asked", {"confirm": "yes"})
    again = client.get("/p/acme/erasure/erase/?subject=c-1&reason=asked")
    assert "was already erased" in again.content.decode()
    posted = client.post("/p/acme/erasure/erase/?subject=c-1&reason=asked", {"confirm": "yes"})
    assert posted.status_code == 409
    unknown = client.get("/p/acme/erasure/erase/?subject=nobody&reason=asked")
    assert "has no data subject" in unknown.content.decode()
    assert Event.objects.filter(type="subject.erased").count() == 1


def test_an_admin_encrypts_a_stream_from_the_page(project, alice):
    stream = create_stream(project, "people")
    response = client_of(alice).post(
        f"/p/acme/s/{stream.pk}/personal/", {"subject_member": "person"}
    )
    assert response.status_code == 302
    stream.refresh_from_db()
    assert stream.personal == {"subject": "person"}
    assert Event.objects.filter(type="stream.personal.set").count() == 1


def test_viewers_cannot_erase_and_strangers_see_nothing(customers, bob, charlie):
    url = "/p/acme/erasure/erase/?subject=c-1&reason=asked"
    assert client_of(bob).post(url, {"confirm": "yes"}).status_code == 403
    assert client_of(bob).get("/p/acme/erasure/").status_code == 403
    assert client_of(charlie).post(url, {"confirm": "yes"}).status_code == 404
    assert SubjectKey.objects.get(subject="c-1").key is not None

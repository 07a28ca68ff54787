"""The explorer's Verify page: a member verifies a project or one stream and sees the
report, downloads a digest, and later verifies against it."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from continust.log.projects import create_project
from continust.log.store import fork
from continust.models import Event
from tests.conftest import put
from tests.test_digests import cut_tail
from tests.test_integrity import tamper

pytestmark = pytest.mark.django_db

URL = "/p/acme/integrity/"


@pytest.fixture
def history(stream):
    ((v1,), (v2,), (v3,)) = (put(stream, {"a": n}) for n in (1, 2, 3))  # an append each
    fork(stream, "side", v1)
    return v1, v2, v3


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_viewer_verifies_the_project_and_sees_it_intact(bob, history, stream):
    client = logged_in(bob)
    page = client.get(URL + f"?stream={stream.pk}")
    assert page.status_code == 200
    assert b'id="verify-form"' in page.content and b"Download a digest" in page.content
    answer = client.post(URL, {"stream": ""})
    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'id="verify-ok"' in text and "every stream of acme" in text


def test_a_viewer_verifies_on_the_workers_and_watches_the_progress(bob, charlie, history, stream):
    from continust.audit import fanout
    from continust.models import Verification, VerificationPart

    client = logged_in(bob)
    assert b'id="fan-out-form"' in client.get(URL).content
    started = client.post(URL + "verifications/")
    verification = Verification.objects.get()
    assert started.status_code == 302
    assert started["Location"] == f"{URL}verifications/{verification.pk}/"
    page = client.get(started["Location"]).content.decode()
    assert "0/1 streams verified" in page and 'hx-trigger="every 1s"' in page
    assert "Waiting for a worker" in page
    for part in VerificationPart.objects.filter(verification=verification):
        fanout.run_part(part.pk)
    polled = client.get(started["Location"], headers={"HX-Request": "true"})
    assert polled.status_code == 286  # htmx: stop polling
    text = polled.content.decode()
    assert "1/1 streams verified" in text and 'id="verify-ok"' in text
    assert "hx-trigger" not in text
    assert f"#{verification.pk}" in client.get(URL).content.decode()  # listed
    stranger = logged_in(charlie)
    assert stranger.get(started["Location"]).status_code == 404
    assert stranger.post(URL + "verifications/").status_code == 404
    assert client.get(URL + "verifications/999999/").status_code == 404
    assert Verification.objects.count() == 1


def test_a_broken_link_is_named_on_the_page(bob, history, stream):
    last = Event.objects.get(stream=stream, seq=3)
    tamper(
        f"UPDATE continust_event SET payload = '{{\"a\": 30}}' WHERE position = {last.pk}",
        "continust_event",
    )
    answer = logged_in(bob).post(URL, {"stream": str(stream.pk)})
    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'id="verify-breaks"' in text and "Broken: pricing" in text


def test_a_downloaded_digest_verifies_until_the_tail_is_cut(bob, history, stream):
    client = logged_in(bob)
    download = client.get(URL + "digest.json")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="acme-digest-')
    document = json.loads(download.content)
    assert document["project"] == "acme" and document["streams"][0]["stream"] == "pricing"

    def against() -> str:
        upload = SimpleUploadedFile("d.json", download.content, "application/json")
        answer = client.post(URL, {"stream": "", "digest": upload})
        assert answer.status_code == 200
        return answer.content.decode()

    assert 'id="verify-ok"' in against()
    cut_tail(stream, history[2])
    after = against()
    assert 'id="verify-breaks"' in after and "its tail was cut" in after


def test_a_bad_digest_file_is_a_form_error(bob, history):
    client = logged_in(bob)
    for content, message in (
        (b"not json", "is not JSON"),
        (b'{"format": "x"}', "the digest is refused"),
    ):
        upload = SimpleUploadedFile("d.json", content, "application/json")
        answer = client.post(URL, {"stream": "", "digest": upload})
        assert answer.status_code == 400
        assert message in answer.content.decode()
    unknown = client.post(URL, {"stream": "999999"})
    assert unknown.status_code == 400


def test_strangers_get_404_and_the_stream_page_links_here(charlie, alice, history, stream):
    create_project("other", "Other", owner=charlie)
    assert logged_in(charlie).get(URL).status_code == 404
    assert logged_in(charlie).get(URL + "digest.json").status_code == 404
    page = logged_in(alice).get(f"/p/acme/s/{stream.pk}/").content.decode()
    assert f'href="/p/acme/integrity/?stream={stream.pk}"' in page

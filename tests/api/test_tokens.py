"""Personal API tokens: issued on the Tokens page, shown once, stored hashed, scoped, revoked."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client

from api.models import ApiToken, Scope
from continust.log.projects import add_member, create_project
from continust.models import Event, Role
from tests.api.conftest import Api, event, events_path, issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_browser(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def create_on_page(client, project, name="deploy bot", scope="write"):
    return client.post("/tokens/", {"name": name, "projects": [project.pk], "scope": scope})


def shown_secret(response) -> str:
    match = re.search(r"<code>(ctn_[0-9a-f]{12}_[A-Za-z0-9_-]+)</code>", response.content.decode())
    assert match, "the new token is on the page"
    return match.group(1)


def test_the_page_requires_login(project):
    response = Client().get("/tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().post("/tokens/", {"name": "x"}).status_code == 302
    assert ApiToken.objects.count() == 0


def test_creating_a_token_shows_it_once(alice_browser, project, stream):
    response = create_on_page(alice_browser, project)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = shown_secret(response)
    again = alice_browser.get("/tokens/")
    assert secret not in again.content.decode()
    assert secret[:16] in again.content.decode(), "the prefix identifies it in the list"
    assert (
        Api(Client(), secret).post(events_path(), {"events": [event({"a": 1})]}).status_code == 201
    )


def test_the_token_is_stored_hashed(alice_browser, project):
    secret = shown_secret(create_on_page(alice_browser, project))
    token = ApiToken.objects.get()
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(v) for v in ApiToken.objects.values_list().get())
    assert secret not in stored
    assert secret.split("_", 2)[2] not in stored


def test_only_the_users_projects_can_be_chosen(alice_browser, charlie, project):
    theirs = create_project("theirs", owner=charlie)
    response = create_on_page(alice_browser, theirs)
    assert response.status_code == 400
    assert ApiToken.objects.count() == 0
    assert "theirs" not in alice_browser.get("/tokens/").content.decode()


def test_issuing_refuses_a_project_outside_the_users(alice, charlie):
    from api.models import TokenRefused

    theirs = create_project("theirs", owner=charlie)
    with pytest.raises(TokenRefused):
        ApiToken.issue(alice, "x", [theirs], Scope.READ)


def test_a_revoked_token_is_401(alice_browser, project, stream):
    secret = shown_secret(create_on_page(alice_browser, project))
    api = Api(Client(), secret)
    assert api.get(events_path()).status_code == 200
    token = ApiToken.objects.get()
    asked = alice_browser.post(f"/tokens/{token.pk}/revoke/")  # no confirm: only the question
    assert asked.status_code == 200 and "This cannot be undone" in asked.content.decode()
    assert api.get(events_path()).status_code == 200
    shown = alice_browser.get(f"/tokens/{token.pk}/revoke/").content.decode()
    assert "gets 401 from its next request on" in shown and "Cancel" in shown
    response = alice_browser.post(f"/tokens/{token.pk}/revoke/", {"confirm": "yes"})
    assert response.status_code == 302
    assert api.get(events_path()).status_code == 401
    assert api.post(events_path(), {"events": [event({"a": 1})]}).status_code == 401
    assert Event.objects.count() == 0
    assert "revoked" in alice_browser.get("/tokens/").content.decode()


def test_no_one_revokes_someone_elses_token(alice_browser, bob, project):
    token = ApiToken.issue(bob, "bob's", [project], Scope.READ)[0]
    assert alice_browser.post(f"/tokens/{token.pk}/revoke/", {"confirm": "yes"}).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_takes_a_confirmed_post(alice_browser, alice, project):
    token = ApiToken.issue(alice, "x", [project], Scope.READ)[0]
    assert alice_browser.get(f"/tokens/{token.pk}/revoke/").status_code == 200  # the question
    assert alice_browser.post(f"/tokens/{token.pk}/revoke/", {"confirm": "no"}).status_code == 200
    token.refresh_from_db()
    assert token.revoked_at is None


def test_posts_need_the_csrf_token(alice, project):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert create_on_page(client, project).status_code == 403
    token = ApiToken.issue(alice, "x", [project], Scope.READ)[0]
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 403
    page = client.get("/tokens/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


def test_a_read_token_cannot_write(alice, project, stream):
    reader = Api(Client(), issue(alice, [project], Scope.READ))
    assert reader.post(events_path(), {"events": [event({"a": 1})]}).status_code == 403
    assert reader.post("/projects/acme/streams", {"name": "new"}).status_code == 403
    assert Event.objects.count() == 0


def test_a_token_scoped_to_no_project_sees_nothing(alice, project, stream):
    nowhere = Api(Client(), issue(alice, []))
    assert nowhere.get(events_path()).status_code == 404
    assert nowhere.get("/projects").json()["items"] == []


def test_a_token_stops_working_when_its_user_leaves_the_project(bob, project, stream):
    bob_token = Api(Client(), issue(bob, [project], Scope.READ))
    assert bob_token.get(events_path()).status_code == 200
    project.memberships.filter(user=bob).delete()
    assert bob_token.get(events_path()).status_code == 404


def test_an_editor_may_write(bob, project, stream):
    add_member(project, bob, Role.EDITOR)
    writer = Api(Client(), issue(bob, [project], Scope.WRITE))
    assert writer.post(events_path(), {"events": [event({"a": 1})]}).status_code == 201


def test_the_page_escapes_what_users_typed(alice_browser, alice, project):
    create_on_page(alice_browser, project, name="<script>alert(1)</script>")
    page = alice_browser.get("/tokens/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_lists_only_the_users_tokens(alice_browser, bob, project):
    ApiToken.issue(bob, "bobs-secret-bot", [project], Scope.READ)
    assert "bobs-secret-bot" not in alice_browser.get("/tokens/").content.decode()

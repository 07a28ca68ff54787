"""The role matrix: every URL pattern of the project, asked by every role, a stranger and nobody.

One mechanism decides access (``explorer.access.member_required`` for pages and
fragments, ``api.auth`` for the HTTP API), and this test proves it holds everywhere:
it enumerates the URL resolver, so a new pattern without a place in the matrix fails.

    role      below the view's role   at or above it     stranger   anonymous
    page      403                     200 / 302 (400)    404        302 to login
    API read  -                       200                404        401
    API write 403                     2xx                404        401
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from api.models import ApiToken, Scope
from continust.audit import reviews
from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import fork
from continust.models import Role
from continust.pipelines.control import create_pipeline
from continust.replays.replay import start_replay
from continust.retention import compaction
from continust.subscriptions.registry import create_subscription
from tests.conftest import put

pytestmark = pytest.mark.django_db

ROLES = [Role.VIEWER, Role.EDITOR, Role.REVIEWER, Role.ADMIN]
LOGIN = "/accounts/login/"

# Patterns outside any project, and what an anonymous visitor may get from them.
NOT_PROJECT = {
    "home": "login",
    "login": "public",
    "logout": "public",
    "password_reset": "public",
    "password_reset_done": "public",
    "password_reset_confirm": "public",
    "password_reset_complete": "public",
    "password_change": "login",
    "password_change_done": "login",
    "api-tokens": "login",
    "api-token-revoke": "login",
    "openapi-json": "public",
    "openapi-view": "public",
    "api-docs-asset": "public",
    "api-root": "public",
    None: "public",  # the API's JSON 404 for every other path
}


# The role each kind of change needs, as the issue defines roles; any other page that
# changes something needs at least editor, and reading needs viewer.
REQUIRED = {
    "fork": Role.EDITOR,
    "merge": Role.EDITOR,
    "replay-start": Role.EDITOR,
    "replay-cancel": Role.EDITOR,
    "replay-promote": Role.EDITOR,
    "replay-discard": Role.ADMIN,
    "review-open": Role.REVIEWER,
    "review-comment": Role.REVIEWER,
    "review-correct": Role.REVIEWER,
    "review-check": Role.REVIEWER,
    "review-decide": Role.REVIEWER,
    "members": Role.VIEWER,
    "member-invite": Role.ADMIN,
    "member-role": Role.ADMIN,
    "member-remove": Role.ADMIN,
}
# Retention (issue 8): only an admin sets a stream's policy or compacts it by hand.
REQUIRED.update({"retention-policy": Role.ADMIN, "compaction-start": Role.ADMIN})


@dataclass(frozen=True)
class Route:
    route: str
    pattern: URLPattern

    @property
    def name(self) -> str | None:
        return self.pattern.name

    @property
    def view(self) -> Any:
        return self.pattern.callback


def routes() -> list[Route]:
    def walk(patterns: list[Any], prefix: str) -> list[Route]:
        found = []
        for item in patterns:
            if isinstance(item, URLResolver):
                found += walk(item.url_patterns, prefix + str(item.pattern))
            else:
                found.append(Route(prefix + str(item.pattern), item))
        return found

    return walk(get_resolver().url_patterns, "")


@pytest.fixture
def world(db):
    """acme: alice admin, rita reviewer, eddie editor, vera viewer, dave viewer (to manage);
    charlie is only in elsewhere.

    pricing main: v1 ─ v2 ─ v3, side: v1 ─ v4; a review v1..v3; a replay of main; a
    pipeline.
    """
    users = {
        name: User.objects.create_user(name, password=f"{name}-password-1")
        for name in ("alice", "rita", "eddie", "vera", "dave", "charlie")
    }
    acme = create_project("acme", owner=users["alice"])
    for name, role in (
        ("rita", Role.REVIEWER),
        ("eddie", Role.EDITOR),
        ("vera", Role.VIEWER),
        ("dave", Role.VIEWER),
    ):
        add_member(acme, users[name], role)
    create_project("elsewhere", owner=users["charlie"])
    stream = create_stream(acme, "pricing")
    v1, v2, v3 = put(stream, {"n": 1}, {"n": 2}, {"n": 3})
    fork(stream, "side", v1)
    (v4,) = put(stream, {"m": 1}, branch="side")
    review = reviews.open_review(stream, base=v1, head=v3, actor="alice")
    reviews.comment(review, actor="rita", body="hello")
    replay = start_replay(stream, end="main", actor="eddie")
    # Named like the stream: the API's <name> is a stream, the pipelines' a pipeline.
    create_pipeline(acme, "pricing", definition="event-counts", actor="eddie")
    create_subscription(acme, "pricing", kind="persistent")  # and the subscriptions' one
    job = compaction.request(stream, actor="alice")
    integrity_pins = f"pin={stream.pk}.{stream.event_count}.4"
    personas = {
        Role.VIEWER: "vera",
        Role.EDITOR: "eddie",
        Role.REVIEWER: "rita",
        Role.ADMIN: "alice",
        "stranger": "charlie",
    }
    tokens = {}
    for who, name in personas.items():
        project = acme if who != "stranger" else users["charlie"].projects.get()
        tokens[who] = ApiToken.issue(users[name], "matrix", [project], Scope.WRITE)[1]
    return {
        "users": users,
        "personas": personas,
        "tokens": tokens,
        "project": acme,
        "kwargs": {
            "slug": "acme",
            "stream_id": stream.pk,
            "version_id": v3.pk,
            "event_id": v3.event.id,
            "review_id": review.pk,
            "member_id": acme.memberships.get(user=users["dave"]).pk,
            "replay_id": replay.pk,
            "fmt": "html",
            "name": stream.name,
            "compaction_id": job.pk,
            "token_id": ApiToken.objects.filter(user=users["alice"]).get().pk,
            "uidb64": "MQ",
            "token": "set-password",
        },
        "queries": {
            "compare": f"a={v1.pk}&b={v3.pk}",
            "merge": "source=side&into=main",
            "jump": "q=main",
            "audit-export": integrity_pins,
            "blame": "path=/n",
            "api": f"a={v1.pk}&b={v3.pk}&of=main&ref=main",
        },
        "bodies": {
            "add_stream": lambda who: {"name": f"new-{who}"},
            "append_events": lambda who: {"events": [{"type": "t", "payload": {}}]},
            "set_retention": lambda who: {"kind": "eternal"},
            "request_compaction": lambda who: {},
        },
        "v4": v4,
    }


def url_of(route: Route, world: dict[str, Any]) -> str:
    """Fill a route's parameters from the world; a parameter it does not know fails."""
    converters = route.pattern.pattern.converters

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in world["kwargs"]:
            pytest.fail(
                f"the role matrix has no value for <{name}> in {route.route!r}: "
                "add one to the world fixture"
            )
        return str(converters[name].to_url(world["kwargs"][name]))

    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", value, route.route)
    query = world["queries"].get("api" if route.route.startswith("api/") else route.name)
    return path + (f"?{query}" if query else "")


def client_for(world: dict[str, Any], who: str | None) -> Client:
    client = Client()
    if who is not None:
        client.force_login(world["users"][world["personas"][who]])
    return client


def call(client: Client, method: str, url: str, **extra: Any) -> int:
    response = client.get(url, **extra) if method == "GET" else client.post(url, **extra)
    if response.status_code == 302 and not response["Location"].startswith(LOGIN):
        return 302
    if response.status_code == 302:
        return -302  # to the login page
    return response.status_code


def methods_of(route: Route, world: dict[str, Any], url: str) -> list[str]:
    """The methods a page answers: probe as its admin (405 means: not this one)."""
    admin = client_for(world, Role.ADMIN)
    return [m for m in ("GET", "POST") if call(admin, m, url) != 405]


def check_page(route: Route, world: dict[str, Any], problems: list[str]) -> None:
    required = route.view.required_role
    url = url_of(route, world)
    methods = methods_of(route, world, url)
    if not methods:
        problems.append(f"{url}: answers neither GET nor POST")
    expected = REQUIRED.get(route.name, Role.EDITOR if "POST" in methods else Role.VIEWER)
    if (route.name in REQUIRED or "POST" in methods) and Role.rank(required) < Role.rank(expected):
        problems.append(f"{url} needs only {required}; it should need {expected}")
    for method in methods:
        ok = {200, 302} if method == "GET" else {200, 302, 400}
        # The admin goes last: an admin's POST may remove the member the URL names.
        for role in sorted(ROLES, key=Role.rank):
            got = call(client_for(world, role), method, url)
            want = ok if Role.rank(role) >= Role.rank(required) else {403}
            if got not in want:
                problems.append(f"{method} {url} as {role}: {got}, expected {sorted(want)}")
        for who, want_one, extra in (
            ("stranger", 404, {}),
            ("stranger", 404, {"HTTP_HX_REQUEST": "true"}),
            (None, -302, {}),
        ):
            got = call(client_for(world, who), method, url, **extra)
            if got != want_one:
                problems.append(
                    f"{method} {url} as {who or 'anonymous'}: {got}, "
                    f"expected {'302 to login' if want_one == -302 else want_one}"
                )


def api_methods() -> dict[str, list[str]]:
    from api.routes import api

    return {
        op.view_func.__name__: op.methods
        for _, router in api._routers
        for view in router.path_operations.values()
        for op in view.operations
    }


# API operations that need more than the editor role to write.
API_REQUIRED = {"set_retention": Role.ADMIN, "request_compaction": Role.ADMIN}


def check_api(route: Route, world: dict[str, Any], methods: list[str], problems: list[str]) -> None:
    url = url_of(route, world)
    required = API_REQUIRED.get(route.name, Role.EDITOR)
    for method in methods:
        body = world["bodies"].get(route.name)
        if method != "GET" and body is None:
            problems.append(f"POST {url}: the role matrix has no body for {route.name}")
            continue
        for who in [*ROLES, "stranger", None]:
            headers = {"HTTP_AUTHORIZATION": f"Bearer {world['tokens'][who]}"} if who else {}
            client = Client()
            if method == "GET":
                got = client.get(url, **headers).status_code
            else:
                send = client.put if method == "PUT" else client.post
                got = send(
                    url, json.dumps(body(who)), content_type="application/json", **headers
                ).status_code
            if who is None:
                want = {401}
            elif who == "stranger":
                want = {200} if "slug" not in route.pattern.pattern.converters else {404}
            elif method != "GET" and Role.rank(who) < Role.rank(required):
                want = {403}
            else:
                want = {200, 201, 202}
            if got not in want:
                problems.append(
                    f"{method} {url} as {who or 'anonymous'} (API): {got}, expected {sorted(want)}"
                )


def check_outside(route: Route, world: dict[str, Any], problems: list[str]) -> None:
    if route.route.startswith("admin/"):
        return  # Django's admin: staff only, its own mechanism (tests/test_admin.py)
    if route.name not in NOT_PROJECT:
        problems.append(
            f"{route.route} ({route.name}) is outside any project and not in "
            "the matrix's NOT_PROJECT list: is it meant to be?"
        )
        return
    if NOT_PROJECT[route.name] == "login":
        url = url_of(route, world)
        for method in ("GET", "POST"):
            got = call(Client(), method, url)
            if got not in {-302, 405}:
                problems.append(f"{method} {url} as anonymous: {got}, expected 302 to login")


def test_every_url_obeys_the_roles(world):
    problems: list[str] = []
    api = api_methods()
    checked = 0
    for route in routes():
        guarded = hasattr(route.view, "required_role")
        if route.route.startswith("api/") and route.name in api:
            check_api(route, world, api[route.name], problems)
        elif guarded:
            check_page(route, world, problems)
        elif "slug" in route.pattern.pattern.converters:
            problems.append(f"{route.route} names a project but is not behind member_required")
        else:
            check_outside(route, world, problems)
            continue
        checked += 1
    assert problems == [], "\n".join(problems)
    assert checked >= 40

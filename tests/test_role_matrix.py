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
from continust.audit import event_types, fanout, reviews
from continust.audit.digests import take_digest
from continust.audit.erasure import set_personal
from continust.log.projects import add_member, create_project, create_stream
from continust.log.store import fork
from continust.models import DeliveryStatus, Role, WebhookDelivery
from continust.pipelines.control import create_from_spec
from continust.read.project_log import read_log
from continust.replays.replay import start_replay
from continust.retention import compaction
from continust.subscriptions.registry import create_subscription
from continust.webhooks import follow
from continust.webhooks import registry as webhook_registry
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
    "metrics": "scrapers",  # the configured networks or a token; anyone else a 404
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
# Projections: only an admin runs or rebuilds one.
REQUIRED.update({"projection-run": Role.ADMIN, "projection-rebuild": Role.ADMIN})
# Erasure (issue 16): only an admin sees the page, encrypts a stream or erases a subject.
REQUIRED.update(dict.fromkeys(("erasure", "erasure-erase", "stream-personal"), Role.ADMIN))
# Deleting a pipeline (its runs, results and deliveries) is the admins'.
REQUIRED["pipeline-delete"] = Role.ADMIN
# Verifying (a POST: it may upload a digest) only reads, as the verify command does.
REQUIRED.update({"integrity": Role.VIEWER})
# Verifying on the workers (a POST that starts the tasks) only reads too.
REQUIRED.update({"verification-start": Role.VIEWER})
# Event types (issue 16): every member reads the registry; only an admin changes it.
REQUIRED.update(
    dict.fromkeys(("event-type-register", "event-type-evolve", "event-types-setting"), Role.ADMIN)
)
# Webhooks (issue 15): only an admin sees or changes them (their URLs and deliveries).
REQUIRED.update(
    dict.fromkeys(
        (
            "webhooks",
            "webhook",
            "webhook-add",
            "webhook-active",
            "webhook-remove",
            "webhook-rotate",
            "webhook-redeliver",
        ),
        Role.ADMIN,
    )
)


def pipeline_spec(path: str) -> dict[str, Any]:
    """A pipeline's spec: the pricing stream's events, mapped, into a JSON Lines file."""
    return {
        "sources": [{"streams": ["pricing"]}],
        "steps": [{"map": {"n": "/payload/n"}}],
        "sink": {"jsonl": {"path": path}},
    }


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
    logged = read_log(stream.project).entries[-1].at  # the log position of v3's event
    fork(stream, "side", v1)
    (v4,) = put(stream, {"m": 1}, branch="side")
    for role in ROLES:  # a branch for each role to merge into main over the API
        fork(stream, f"m-{role}", v3)
        put(stream, {f"k-{role}": 1}, branch=f"m-{role}")
    review = reviews.open_review(stream, base=v1, head=v3, actor="alice")
    reviews.comment(review, actor="rita", body="hello")
    replay = start_replay(stream, end="main", actor="eddie")
    # Named like the stream: the API's <name> is a stream, the pipelines' a pipeline.
    create_from_spec(acme, "pricing", pipeline_spec("pricing.jsonl"), actor="eddie")
    create_subscription(acme, "pricing", kind="persistent")  # and the subscriptions' one
    job = compaction.request(stream, actor="alice")
    # A webhook to a public address (never sent to: no worker runs) with a failed delivery.
    webhook, _ = webhook_registry.register(acme, "https://93.184.215.14/hook", ["set"])
    put(stream, {"n": 4})
    follow.follow(webhook.pk)
    delivery = WebhookDelivery.objects.get(webhook=webhook)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    integrity_pins = f"pin={stream.pk}.{stream.event_count}.4"
    verification = fanout.start(acme, actor="vera")
    # A stream that keeps personal data, with a data subject the admin can erase once.
    customers = set_personal(create_stream(acme, "customers"), "customer", actor="alice")
    put(customers, {"customer": "s-1", "email": "s@example.com"})
    event_type = event_types.register(acme, "order.placed", {}, actor="alice")
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
            "verification_id": verification.pk,
            "type_id": event_type.pk,
            "typename": "order.placed",
            "fmt": "html",
            "name": stream.name,
            "pipeline": "pricing",
            "compaction_id": job.pk,
            "projection": "event_counts",
            "webhook_id": webhook.pk,
            "delivery_id": delivery.pk,
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
            "api": f"a={v1.pk}&b={v3.pk}&of=main&ref=main&from=side&into=main&path=/n"
            f"&range={v1.pk}..main&as_of_position={logged}&subject=s-1",
            "stream-as-of": "at=2100-01-01T00:00&clock=recorded&branch=main",
            "erasure-erase": "subject=s-1&reason=asked",
        },
        "bodies": {
            "add_stream": lambda who: {"name": f"new-{who}"},
            "append_events": lambda who: {"events": [{"type": "t", "payload": {}}]},
            "set_retention": lambda who: {"kind": "eternal"},
            "register_type": lambda who: {"name": f"t-{who}", "schema": {}},
            "evolve_type": lambda who: {"schema": {}, "upcaster": {"patch": []}},
            "set_unregistered_types": lambda who: {"unregistered_types": "allow"},
            "request_compaction": lambda who: {},
            "fork_branch": lambda who: {"name": f"f-{who}", "at": "main"},
            "merge_branches": lambda who: {"from": f"m-{who}", "into": "main"},
            "verify_against_digest": lambda who: take_digest(acme),
            "start_verification": lambda who: {},
            "start_replay": lambda who: {"to": "main"},
            "cancel_replay": lambda who: {},
            "promote_replay": lambda who: {},
            "discard_replay": lambda who: {},
            "open_review": lambda who: {"stream": "pricing", "head": "main", "base": str(v1.pk)},
            "comment_on_review": lambda who: {"body": f"from {who}"},
            "check_path": lambda who: {"path": "/n"},
            "decide": lambda who: {"decision": "request_changes", "note": who},
            "post_tag": lambda who: {"name": f"t-{who}", "version": "main"},
            "bisect": lambda who: {
                "good": [str(v1.pk)],
                "bad": "main",
                "pointer": "/n",
                "expect": v1.state.data.get("n"),
            },
            "post_revert": lambda who: {"version": "main", "dry_run": True},
            "pause_webhook": lambda who: {},
            "resume_webhook": lambda who: {},
            "rotate_secret": lambda who: {},
            "redeliver": lambda who: {},
            "add_webhook": lambda who: {"url": f"https://93.184.215.14/{who}"},
            "remove_webhook": lambda who: {},
            "set_personal_data": lambda who: {"subject_member": "customer"},
            "erase_subject": lambda who: {"subject": "s-1", "reason": f"asked by {who}"},
            "create_pipeline": lambda who: {
                "name": f"new-{str(who).lower()}",
                "spec": pipeline_spec(f"{str(who).lower()}.jsonl"),
            },
            "update_pipeline": lambda who: {"spec": pipeline_spec("pricing.jsonl")},
            "pause_pipeline": lambda who: {},
            "resume_pipeline": lambda who: {},
            "delete_pipeline": lambda who: {},
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


# API operations that need another role than editor to write (a POST that only reads
# needs a viewer).
API_REQUIRED = {
    "set_retention": Role.ADMIN,
    "register_type": Role.ADMIN,
    "evolve_type": Role.ADMIN,
    "set_unregistered_types": Role.ADMIN,
    "request_compaction": Role.ADMIN,
    "discard_replay": Role.ADMIN,
    "open_review": Role.REVIEWER,
    "comment_on_review": Role.REVIEWER,
    "check_path": Role.REVIEWER,
    "decide": Role.REVIEWER,
    "verify_against_digest": Role.VIEWER,
    "start_verification": Role.VIEWER,
}
# Operations on the one replay of the world: past the role check, the replay's state decides
# (a waiting replay cannot be promoted or discarded; cancelled once, it is finished).
API_STATEFUL = {"cancel_replay", "promote_replay", "discard_replay"}
# Bisect (a read, for viewers) and revert (a dry run) answer 422 when the history says so.
API_REQUIRED["bisect"] = Role.VIEWER
API_STATEFUL |= {"bisect", "post_revert"}
API_REQUIRED.update(
    dict.fromkeys(
        (
            "add_webhook",
            "remove_webhook",
            "pause_webhook",
            "resume_webhook",
            "rotate_secret",
            "redeliver",
        ),
        Role.ADMIN,
    )
)
# Erasure (issue 16): only an admin encrypts a stream, previews or erases a data subject.
API_REQUIRED.update(dict.fromkeys(("set_personal_data", "erase_subject"), Role.ADMIN))
# Deleting a pipeline is the admins'; changing one that is asked to run is a 409 (the
# matrix resumes it before it updates it).
API_REQUIRED["delete_pipeline"] = Role.ADMIN
API_BUSY = {"update_pipeline"}
# API reads that need more than membership: a webhook's URL and deliveries are the admins'.
API_READ_REQUIRED = dict.fromkeys(("list_webhooks", "get_webhook", "list_deliveries"), Role.ADMIN)
API_READ_REQUIRED["preview_erasure"] = Role.ADMIN


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
                send = {"PUT": client.put, "DELETE": client.delete}.get(method, client.post)
                got = send(
                    url, json.dumps(body(who)), content_type="application/json", **headers
                ).status_code
            if who is None:
                want = {401}
            elif who == "stranger":
                want = {200} if "slug" not in route.pattern.pattern.converters else {404}
            elif Role.rank(who) < Role.rank(
                API_READ_REQUIRED.get(route.name, Role.VIEWER) if method == "GET" else required
            ):
                want = {403}
            elif route.name in API_STATEFUL:
                want = {200, 422}
            elif route.name in API_BUSY:
                want = {200, 409}
            else:
                want = {200, 201, 202, 204}
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
    if NOT_PROJECT[route.name] == "scrapers":
        got = Client(REMOTE_ADDR="203.0.113.9").get(url_of(route, world)).status_code
        if got != 404:
            problems.append(f"{route.route} from outside the metrics networks: {got}, expected 404")
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
    # An admin's DELETE removes what the URL names: those go last, after every other use.
    ordered = sorted(routes(), key=lambda r: "DELETE" in api.get(r.name or "", []))
    for route in ordered:
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

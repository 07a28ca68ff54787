"""What a user types into the explorer: a name no record could have is a 400 page, a
missing one a 404 page, both inside the layout with a way back; never a 500."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continust.log.projects import add_member
from continust.models import Project, Role, Stream, Version

pytestmark = pytest.mark.django_db

LAYOUT = '<header class="top">'
ODD = ["¹3", "١٢", "१२", "a\x00b", "\x00"]


@pytest.fixture
def demo(bob):
    call_command("seed_demo", "--small", stdout=StringIO())
    project = Project.objects.get(slug="demo")
    add_member(project, bob, Role.VIEWER)
    return project


@pytest.fixture
def pricing(demo):
    return Stream.objects.get(project=demo, name="pricing")


@pytest.fixture
def client(demo):
    client = Client()
    client.force_login(demo.memberships.get(role=Role.ADMIN).user)
    return client


def assert_error_page(response, status):
    assert response.status_code == status
    page = response.content.decode()
    assert LAYOUT in page, "the error renders inside the layout"
    assert 'href="/"' in page or "Go back" in page, "with a way back"


@pytest.mark.parametrize("typed", ["¹3", "a\x00b", "99999999999999999999"])
@pytest.mark.parametrize("param", ["a", "b", "v"])
def test_a_bad_version_on_the_stream_page_is_a_400_page(client, pricing, param, typed):
    url = reverse("stream", args=["demo", pricing.pk])
    assert_error_page(client.get(url, {param: typed}), 400)


@pytest.mark.parametrize("typed", ["١٢", "१२"])
def test_digits_of_other_scripts_pick_no_version(client, pricing, typed):
    """Before, int() read them as 12: the page silently showed version 12."""
    url = reverse("stream", args=["demo", pricing.pk])
    assert_error_page(client.get(url, {"v": typed}), 400)
    assert_error_page(
        client.get(reverse("compare", args=["demo", pricing.pk]), {"a": typed, "b": typed}), 400
    )


def test_compare_refuses_a_superscript_and_names_it(client, pricing):
    last = Version.objects.filter(stream=pricing).last()
    response = client.get(reverse("compare", args=["demo", pricing.pk]), {"a": "¹3", "b": last.pk})
    assert_error_page(response, 400)
    assert "¹3" in response.content.decode()


@pytest.mark.parametrize("typed", ["¹3", "١٢"])
def test_jump_to_an_odd_reference_finds_nothing(client, pricing, typed):
    response = client.get(reverse("jump", args=["demo", pricing.pk]), {"q": typed})
    assert response.status_code == 302 and "?v=" not in response["Location"]


def test_jump_still_finds_a_version_by_id_and_by_v(client, pricing):
    first = Version.objects.filter(stream=pricing).first()
    for typed in (str(first.pk), f"v{first.pk}", f"  v{first.pk} "):
        response = client.get(reverse("jump", args=["demo", pricing.pk]), {"q": typed})
        assert response["Location"].endswith(f"?v={first.pk}"), typed


def test_a_nul_in_a_search_is_a_400_page(client, pricing):
    assert_error_page(client.get(reverse("project", args=["demo"]), {"q": "a\x00b"}), 400)
    assert_error_page(client.get(reverse("jump", args=["demo", pricing.pk]), {"q": "\x00"}), 400)


def test_a_missing_page_is_a_404_inside_the_layout(client, pricing):
    assert_error_page(client.get(reverse("version", args=["demo", pricing.pk, 10**12])), 404)
    assert_error_page(client.get("/p/demo/no-such-page/"), 404)


def test_opening_an_address_only_a_form_sends_to_is_a_405_page(client, pricing):
    opened = client.get(reverse("replay-start", args=["demo", pricing.pk]))
    assert_error_page(opened, 405)
    assert opened["Allow"] == "POST"
    assert "only takes what a form sends" in opened.content.decode()


# -- every route of the URL conf, with generated text ----------------------------------------


def explorer_routes(resolver=None, prefix=""):
    """Yield the route of every explorer page, as the URL conf spells it."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if not route.startswith(("admin/", "api/", "accounts/")):
                yield from explorer_routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route


def fill(route, values, text):
    """Put known values in a route's path parameters, or the generated text where it fits."""

    def one(match):
        kind, name = match.group(1), match.group(2)
        if kind in {"slug", "str"} and re.fullmatch(r"[-a-zA-Z0-9_]+", text) and name != "slug":
            return text
        return str(values.get(name, values.get(kind, 1)))

    return "/" + re.sub(r"<(\w+):(\w+)>", one, route)


QUERY = [
    "q",
    "a",
    "b",
    "v",
    "top",
    "before",
    "day",
    "version",
    "pick",
    "path",
    "format",
    "metric",
    "pin",
    "start",
    "end",
    "head",
    "base",
    "fragment",
    "source",
    "into",
]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=st.text(st.characters(exclude_categories=("Cs",)), max_size=30) | st.sampled_from(ODD),
    htmx=st.booleans(),
)
def test_no_route_answers_a_server_error_to_any_text(client, pricing, text, htmx):
    version = Version.objects.filter(stream=pricing).last()
    values = {
        "slug": "demo",
        "stream_id": pricing.pk,
        "version_id": version.pk,
        "event_id": version.event_id,
        "int": 1,
        "uuid": version.event_id,
    }
    headers = {"HX-Request": "true"} if htmx else {}
    for route in explorer_routes():
        url = fill(route, values, text)
        response = client.get(url, dict.fromkeys(QUERY, text), headers=headers)
        assert response.status_code < 500, (url, text)
        if response.status_code in {400, 404, 405} and not htmx:
            assert LAYOUT in response.content.decode(), url

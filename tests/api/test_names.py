"""What a client types where the API takes a name: a 400 for a name no record could have,
a 404 for a missing one, never a 500; every operation that takes a name, found from the
spec, driven with generated text."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.routes import api
from continust.models import Version
from tests.api.conftest import event, events_path

pytestmark = pytest.mark.django_db

STREAM = "/projects/acme/streams/pricing"
PAIRS = [
    "diff/merge-patch",
    "diff/changes",
    "diff/json-patch",
    "lineage/merge-bases",
    "lineage/between",
    "lineage/path",
]


@pytest.fixture
def versions(alice_api, stream):
    body = {"events": [event({"n": n}) for n in range(13)]}
    return [v["id"] for v in alice_api.post(events_path(), body).json()["versions"]]


@pytest.mark.parametrize("typed", ["¹3", "v¹3", "3²"])
def test_a_superscript_reference_is_not_a_server_error(alice_api, versions, typed):
    """Before: str.isdigit() said yes, int() said no, and every one of these was a 500."""
    for operation in PAIRS:
        for pair in ({"a": typed, "b": "main"}, {"a": "main", "b": typed}):
            response = alice_api.get(f"{STREAM}/{operation}", **pair)
            assert response.status_code == 404, (operation, pair)
            assert typed in response.json()["detail"]
    assert alice_api.get(f"{STREAM}/resolve", ref=typed).status_code == 404
    assert alice_api.get(f"{STREAM}/lineage/ancestors", of=typed).status_code == 404


@pytest.mark.parametrize("typed", ["١٢", "१२", "v١٢"])
def test_digits_of_other_scripts_name_no_version(alice_api, versions, typed):
    """Before: int() read them, and they named version 12."""
    assert Version.objects.filter(pk=12).exists() or versions
    response = alice_api.get(f"{STREAM}/resolve", ref=typed)
    assert response.status_code == 404
    assert alice_api.get(f"{STREAM}/diff/merge-patch", a=typed, b="main").status_code == 404


def test_ascii_ids_and_v_ids_still_resolve(alice_api, versions):
    for typed in (str(versions[2]), f"v{versions[2]}", f" v{versions[2]} "):
        response = alice_api.get(f"{STREAM}/resolve", ref=typed)
        assert response.status_code == 200 and response.json()["id"] == versions[2], typed


@pytest.mark.parametrize("typed", ["a\x00b", "\x85", "main\n"])
def test_a_control_character_in_a_reference_is_400(alice_api, versions, typed):
    response = alice_api.get(f"{STREAM}/resolve", ref=typed)
    assert response.status_code == 400


@pytest.mark.parametrize("typed", ["abc", "-1", quote("¹3"), "9" * 20, "1.5"])
def test_an_id_path_outside_the_spec_is_400_not_404(alice_api, versions, typed):
    """Before: the route matched only ASCII digits, so these were 404 'no such API
    resource', though the spec declares an integer id and the README a 400 for what is
    outside the spec."""
    for path in (f"{STREAM}/versions/{typed}", f"{STREAM}/compactions/{typed}"):
        response = alice_api.get(path)
        assert response.status_code == 400, (path, response.status_code)
    assert alice_api.get(f"{STREAM}/versions/{versions[0]}").status_code == 200


def test_the_spec_states_what_the_server_accepts():
    spec = api.get_openapi_schema()
    params = {
        (p["name"], p["in"]): p["schema"]
        for path in spec["paths"].values()
        for op in path.values()
        for p in op.get("parameters", [])
    }
    assert params[("after", "query")]  # every list has one
    for (name, where), schema in params.items():
        if schema.get("type") == "string" and name not in {"event_id"}:
            assert "pattern" in schema or "enum" in schema, (name, where)
        if schema.get("type") == "integer":
            assert schema.get("maximum", 0) <= 2**63 - 1 and "minimum" in schema, name
    ref = params[("ref", "query")]
    assert ref["maxLength"] == 200 and "\\u0000" in ref["pattern"]
    stream = params[("name", "path")]
    assert "\\u0085" in stream["pattern"], "U+0085 is white space to the server"


def _body_strings(spec):
    """Yield (schema name, string schema) for every string a request body may carry."""
    components = spec["components"]["schemas"]
    seen: set[str] = set()
    stack = [
        ("body", content["schema"])
        for item in spec["paths"].values()
        for operation in item.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
    ]
    while stack:
        where, node = stack.pop()
        if isinstance(node, list):
            stack.extend((where, n) for n in node)
            continue
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                stack.append((name, components[name]))
            continue
        if node.get("type") == "string":
            yield where, node
        for key, value in node.items():
            if isinstance(value, dict | list):
                stack.append((f"{where}.{key}" if key != "properties" else where, value))


def test_the_spec_refuses_nul_in_every_string_a_body_takes():
    """The server refuses U+0000 in any string of a body (400 malformed_json): the spec
    says so too, or a client the spec lets send one meets an answer it does not expect
    (schemathesis, seed 2474745211: a horizon_age with U+0000)."""
    strings = list(_body_strings(api.get_openapi_schema()))
    assert any("horizon_age" in where for where, _ in strings)
    for where, schema in strings:
        if "enum" in schema or "const" in schema or "format" in schema:
            continue
        assert "pattern" in schema, where
        assert re.search(schema["pattern"], "90\x00d") is None, where


def test_a_nul_in_a_horizon_age_is_400_and_changes_nothing(alice_api, stream):
    response = alice_api.client.put(
        "/api/projects/acme/streams/pricing/retention",
        json.dumps({"kind": "ephemeral", "horizon_age": "90\u0000d"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {alice_api.token}"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    stream.refresh_from_db()
    assert stream.retention == "eternal"


# -- every operation of the spec, with generated text ----------------------------------------


def operations():
    """Yield (method, path template, parameters) for every operation of the served spec."""
    for template, item in api.get_openapi_schema()["paths"].items():
        for method, operation in item.items():
            statuses = {str(status) for status in operation["responses"]}
            yield method, template, operation.get("parameters", []), statuses


def _value(param, text, known, *, aimed):
    if param["in"] == "path" and aimed:
        return known[param["name"]]
    if param["schema"].get("type") == "integer":
        return re.sub(r"[^0-9]", "", text)[:25] or known.get(param["name"], "1")
    return text


def _call(api_client, method, path, query, text):
    if method == "get":
        return api_client.client.get(path, query, headers=api_client.headers())
    body = {
        "events": [{"type": text or "t", "payload": {text: text}, "actor": text}],
        "branch": text or "main",
        "name": text or "s",
        "kind": "eternal",
    }
    return api_client.client.generic(
        method.upper(),
        f"{path}?{urlencode(query)}",
        json.dumps(body),
        content_type="application/json",
        headers=api_client.headers(),
    )


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
    | st.sampled_from(
        ["", "¹3", "١٢", "१२", "\x00", "a\x00b", "\x85", "0", "main", "9" * 30, "1.2.3", "v1"]
    )
)
def test_no_operation_answers_a_server_error_to_any_text(alice_api, versions, text):
    """Each operation twice: every parameter the generated text, then only its query."""
    known = {
        "slug": "acme",
        "name": "pricing",
        "typename": "order.placed",
        "version_id": str(versions[0]),
        "compaction_id": "1",
        "replay_id": "1",
        "verification_id": "1",
        "review_id": "1",
        "event_id": "00000000-0000-0000-0000-000000000000",
        "webhook_id": "1",
        "pipeline": "pricing",
        "delivery_id": "1",
    }
    for method, template, params, statuses in operations():
        for aimed in (False, True):
            path, query = template, {}
            for param in params:
                value = _value(param, text, known, aimed=aimed)
                if param["in"] == "path":
                    path = path.replace("{" + param["name"] + "}", quote(str(value), safe=""))
                else:
                    query[param["name"]] = value
            response = _call(alice_api, method, path, query, text)
            assert response.status_code < 500, (method, path, query)
            assert str(response.status_code) in statuses, (
                method,
                template,
                response.status_code,
                response.content[:200],
            )

"""The spec at a stable URL, and the docs page served without any outside host."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from jsonschema import Draft202012Validator, FormatChecker


def _date_time(value: object) -> bool:
    """RFC 3339 with an offset (jsonschema checks it only with a package this project lacks)."""
    if not isinstance(value, str):
        return True
    return bool(re.match(r"^\d{4}-\d\d-\d\dT", value)) and (
        datetime.fromisoformat(value).tzinfo is not None
    )


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checks("date-time", raises=ValueError)(_date_time)

pytestmark = pytest.mark.django_db


def test_the_spec_is_at_a_stable_url():
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    append = spec["paths"]["/api/projects/{slug}/streams/{name}/events"]["post"]
    assert set(append["responses"]) == {
        "200",
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
    }
    conflict = append["responses"]["409"]["content"]["application/json"]["schema"]
    assert conflict == {"$ref": "#/components/schemas/Conflict"}
    assert "current_head" in spec["components"]["schemas"]["Conflict"]["properties"]


# Reads that take a revision answer 422 bad_revision when it does not resolve.
REVISION_PARAMETERS = {"a", "b", "of", "ref", "range"}


def test_no_operation_answers_422_for_a_schema_error():
    spec = Client().get("/api/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "400" in operation["responses"], (method, path)
            names = {p["name"] for p in operation.get("parameters", ())}
            described = operation.get("description", "")
            # Reads that take a revision, and the one read refused for its content (a merge
            # patch that cannot say null), say 422; no other read answers it.
            if (
                method == "get"
                and not names & REVISION_PARAMETERS
                and "null_not_expressible" not in described
            ):
                assert "422" not in operation["responses"], (method, path)


def test_the_docs_page_loads_nothing_from_elsewhere():
    page = Client().get("/api/docs").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, "the page loads its scripts and styles"
    assert all(s.startswith("/api/") for s in sources), sources
    for source in sources:
        asset = Client().get(source)
        assert asset.status_code == 200, source
        body = b"".join(asset.streaming_content)
        assert len(body) > 0


def test_only_the_docs_assets_are_served():
    response = Client().get("/api/docs/assets/..%2F..%2F__init__.py")
    assert response.status_code == 404


# -- examples -------------------------------------------------------------------------


def _spec() -> dict:
    return Client().get("/api/openapi.json").json()


def _resolve(schema: dict, components: dict) -> list[dict]:
    """The schema and every component it names by $ref, in turn."""
    chain = [schema]
    while "$ref" in chain[-1]:
        chain.append(components[chain[-1]["$ref"].removeprefix("#/components/schemas/")])
    return chain


def _has_example(media: dict, components: dict) -> bool:
    if "example" in media or "examples" in media:
        return True
    return any("example" in s or "examples" in s for s in _resolve(media["schema"], components))


def _bodies(spec: dict):
    """Every request body and 2xx response with a schema: (where, media type object)."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for kind, media in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{method.upper()} {path} request {kind}", media
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    for kind, media in response.get("content", {}).items():
                        if "schema" in media:
                            yield f"{method.upper()} {path} {status} {kind}", media


def test_every_request_and_success_body_has_an_example():
    spec = _spec()
    components = spec["components"]["schemas"]
    bodies = list(_bodies(spec))
    assert len(bodies) > 80, "the walk finds the operations"
    missing = [where for where, media in bodies if not _has_example(media, components)]
    assert missing == [], "\n".join(missing)


def _examples(node: Any, where: str):
    """Every schema in the spec that gives examples (a list: a Media Type's ``examples`` is a
    map), and every Media Type's ``example``: (where, its schema, the example)."""
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list):
            schema = {k: v for k, v in node.items() if k != "examples"}
            for index, example in enumerate(node["examples"]):
                yield f"{where} example {index}", schema, example
        if "example" in node and "schema" in node:
            yield f"{where} example", node["schema"], node["example"]
        for key, value in node.items():
            yield from _examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _examples(value, f"{where}/{index}")


def test_every_example_validates_against_its_schema():
    spec = _spec()
    found = list(_examples(spec, "#"))
    assert len(found) > 80, "the walk finds the examples"
    wrong = []
    for where, schema, example in found:
        validator = Draft202012Validator(
            {**schema, "components": spec["components"]}, format_checker=FORMAT_CHECKER
        )
        wrong += [f"{where}: {e.message}" for e in validator.iter_errors(example)]
    assert wrong == [], "\n".join(wrong)


def test_an_example_that_breaks_its_schema_is_found():
    spec = {
        "components": {
            "schemas": {"Out": {"type": "object", "required": ["id"], "examples": [{"ids": 1}]}}
        },
        "paths": {},
    }
    [(where, schema, example)] = _examples(spec, "#")
    assert where == "#/components/schemas/Out example 0"
    assert not Draft202012Validator(schema).is_valid(example)


def test_a_moment_without_an_offset_is_no_date_time():
    schema = {"type": "string", "format": "date-time"}
    check = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    assert check.is_valid("2026-12-06T04:00:00.000000+00:00")
    assert check.is_valid("2026-12-06T04:00:00Z")
    assert not check.is_valid("2026-12-06T04:00:00")
    assert not check.is_valid("yesterday")

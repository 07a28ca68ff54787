"""The spec at a stable URL, and the docs page served without any outside host."""

from __future__ import annotations

import re

import pytest
from django.test import Client

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

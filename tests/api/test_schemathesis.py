"""Schemathesis against the API's own spec: no 5xx, every status and body as documented.

Requests are generated for every operation from the served spec and sent to the
Django WSGI app in-process, with alice's write token: valid ones must be
accepted and invalid ones refused (the spec is as strict as the server), and a
stateful run chains operations through the links schemathesis infers. Most
generated project slugs, stream names and version references would name
nothing, so part of them are pointed at the stream the fixture fills, to reach
the answers beyond 404.

Each run draws with a fixed seed and with a random one, printed (and taken from
``CONTINUST_SCHEMATHESIS_SEED`` when set, to replay a failure).
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiToken, Scope
from continust.audit import event_types, reviews
from continust.audit.erasure import set_personal
from continust.log.policy import make_policy
from continust.log.projects import create_stream
from continust.log.store import NewEvent, append, fork
from continust.pipelines import control
from continust.replays import replay as replays
from continust.retention import compaction
from continust.retention.policies import set_policy

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]
FIXED_SEED = 19
RANDOM_SEED = int(os.environ.get("CONTINUST_SCHEMATHESIS_SEED") or random.randrange(2**32))
# A request the spec allows is never a 400; it may still name nothing (404), meet a moved
# head (409), a released state (410), a payload above the configured cap (413) or a domain
# refusal the spec cannot express, such as an unknown causation id (422).
CONFIG = SchemathesisConfig.from_dict(
    {
        # The token is alice's, sent with every call: a generated Authorization would be overridden.
        "generation": {"mode": "all", "with-security-parameters": False},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "410", "413", "422"]
            }
        },
    }
)


@pytest.fixture
def filled(alice, project, stream):
    """A stream with a fork, a few events with causation, a review, a replay done, a
    compacted stream, and alice's write token."""
    root = uuid.uuid4()
    first = append(stream, [NewEvent(type="set", payload={"a": 1}, id=root)]).versions[0]
    append(stream, [NewEvent(type="set", payload={"b": [1, 2]}, causation=root)])
    fork(stream, "feature", first)
    append(stream, [NewEvent(type="set", payload={"c": {"d": None}})], branch="feature")
    secret = ApiToken.issue(alice, "schemathesis", [project], Scope.WRITE)[1]
    refs = ["main", "feature", str(first.pk), f"v{first.pk}"]
    review = reviews.open_branch_review(stream, "feature", actor="alice")
    replay = replays.start_replay(stream, end="main", actor="alice")
    replays.run(replay.pk)
    # The events so far read through an upcaster: every read answers both payloads.
    event_types.register(project, "set", {"type": "object"}, actor="alice")
    event_types.evolve(
        project,
        "set",
        {"type": "object"},
        patch=[{"op": "add", "path": "/upcast", "value": True}],
        actor="alice",
    )
    # A stream that keeps personal data, for the erasure routes.
    customers = set_personal(create_stream(project, "customers"), "customer", actor="alice")
    for subject in ("c-1", "c-2"):
        append(customers, [NewEvent(type="set", payload={"customer": subject, "email": "x"})])
    # An ephemeral stream compacted: its released events answer a null payload.
    sensor = create_stream(project, "sensor")
    append(sensor, [NewEvent(type="reading", payload={"n": n}) for n in range(6)])
    set_policy(sensor, make_policy("ephemeral", horizon_versions=2), actor="alice")
    compaction.run(compaction.request(sensor, actor="alice").pk)
    # A pipeline named as the stream is: the aimed <name> reaches both.
    control.create_from_spec(project, "pricing", pipeline_spec("pricing"))
    return {
        "secret": secret,
        "refs": refs,
        "event": str(root),
        "version": first.pk,
        "review": review.pk,
        "replay": replay.pk,
    }


def pipeline_spec(name: object) -> dict:
    """A pipeline's spec that validates: the stream's events into a file of its own."""
    file = "".join(c for c in str(name) if c.isalnum() or c == "-")[:60] or "x"
    return {
        "sources": [{"streams": ["pricing"]}],
        "steps": [{"filter": {"types": ["set"]}}, {"map": {"a": "/payload/a"}}],
        "sink": {"jsonl": {"path": f"{file}.jsonl"}},
    }


@pytest.fixture(autouse=True)
def pipeline_files(settings, tmp_path):
    settings.CONTINUST_PIPELINE_FILES_DIR = str(tmp_path / "pipeline-files")


@pytest.fixture(autouse=True)
def keep_the_test_transaction():
    """As Django's test client does: a request must not close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def feeds_end_at_once(settings):
    """A live feed catches up and ends (a zero time limit), so each call of it answers."""
    settings.CONTINUST_FEED_SECONDS = 0


# Loaded at import (the spec needs no database); schemathesis.pytest.from_fixture would load
# it lazily, but it does not work with pytest 9 yet.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", WSGIHandler(), config=CONFIG)


def _pick(value: object, choices: list[str]) -> str | None:
    """Point two generated values out of three at known things, deterministically."""
    digest = hashlib.sha256(repr(value).encode()).digest()
    return choices[digest[0] % len(choices)] if digest[1] % 3 else None


def _aim(case, filled) -> None:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return  # aiming could make an invalid request valid
    path = case.path_parameters or {}
    if "slug" in path and _pick(path["slug"], ["acme"]):
        path["slug"] = "acme"
    if "name" in path and _pick(path["name"], ["pricing"]):
        # Encrypting pricing would turn its appends away: aim at the encrypted stream.
        path["name"] = "customers" if case.path.endswith("/personal") else "pricing"
    if "pipeline" in path and _pick(path["pipeline"], ["pricing"]):
        path["pipeline"] = "pricing"
    if "typename" in path and _pick(path["typename"], ["set"]):
        path["typename"] = "set"
    if "event_id" in path and _pick(path["event_id"], [filled["event"]]):
        path["event_id"] = filled["event"]
    if "version_id" in path and _pick(path["version_id"], ["v"]):
        path["version_id"] = filled["version"]
    for key in ("review_id", "replay_id"):
        if key in path and _pick(path[key], ["x"]):
            path[key] = filled[key.removesuffix("_id")]
    query = case.query or {}
    for key in ("a", "b", "of", "ref"):
        if key in query:
            query[key] = _pick(query[key], filled["refs"]) or query[key]
    for key in ("from", "into"):
        if key in query:
            query[key] = _pick(query[key], ["main", "feature"]) or query[key]
    if "subject" in query:
        query["subject"] = _pick(query["subject"], ["c-1", "c-2"]) or query["subject"]
    if "path" in query:
        query["path"] = _pick(query["path"], ["/a", "/b/1", "/c/d"]) or query["path"]
    if "range" in query:
        query["range"] = (
            _pick(query["range"], ["main~1..feature", "feature..main"]) or query["range"]
        )
    body = case.body
    if isinstance(body, dict):
        for key, choices in (
            ("at", filled["refs"]),
            ("to", filled["refs"]),
            ("head", filled["refs"]),
            ("version", filled["refs"]),
            ("bad", filled["refs"]),
            ("from", ["feature", "main"]),
            ("into", ["main", "feature"]),
            ("branch", ["feature"]),
            ("stream", ["pricing"]),
            ("path", ["/a", "/b", "/c/d"]),
            ("subject", ["c-1", "c-2"]),
        ):
            if isinstance(body.get(key), str):
                body[key] = _pick(body[key], choices) or body[key]
    if isinstance(body, dict) and isinstance(body.get("spec"), dict) and _pick(body, ["x"]):
        # Most generated specs do not validate (a 422): let some be ones that do.
        body["spec"] = pipeline_spec(body.get("name") or path.get("pipeline"))
    if isinstance(body, dict) and isinstance(body.get("events"), list) and _pick(body, ["x"]):
        # Generated ids and heads mostly collide with earlier examples: let most batches
        # be new ones, to reach the appends that succeed or that the reducer refuses.
        body.pop("expected_head", None)
        for item in body["events"]:
            if isinstance(item, dict):
                item.pop("id", None)
                item.pop("causation", None)


def _call(case, filled) -> None:
    _aim(case, filled)
    case.call_and_validate(headers={"Authorization": f"Bearer {filled['secret']}"}, checks=CHECKS)


# max_examples stays small so the run takes a minute or two on every submission; raise it
# locally to explore further.
@schema.parametrize()
@seed(FIXED_SEED)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_spec_says(case, filled):
    _call(case, filled)


@schema.parametrize()
@seed(RANDOM_SEED)
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_spec_says_with_a_random_seed(case, filled):
    print(f"schemathesis seed {RANDOM_SEED}: replay with CONTINUST_SCHEMATHESIS_SEED={RANDOM_SEED}")
    _call(case, filled)


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Chains of calls: the ids one answer gives, fed to the next operation."""

    secret = ""

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Bearer {self.secret}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize("chosen", [FIXED_SEED, RANDOM_SEED], ids=["fixed", "random"])
def test_chained_calls_answer_as_the_spec_says(filled, chosen):
    print(f"schemathesis stateful seed {chosen}: replay with CONTINUST_SCHEMATHESIS_SEED={chosen}")
    Workflow.secret = filled["secret"]
    seed(chosen)(Workflow)  # a state machine takes its seed from the class, as @seed sets it
    Workflow.run(
        settings=settings(
            max_examples=8,
            stateful_step_count=5,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )

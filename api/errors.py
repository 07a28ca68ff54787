"""Domain errors turned into exact HTTP answers, each one documented in the spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from api.auth import BodyTooLarge, Forbidden
from api.schemas import BadRequest, Conflict, Error
from continust.busy import busy_response, is_busy
from continust.core.errors import (
    AlreadyErased,
    AlreadyExists,
    ConcurrencyConflict,
    IdempotencyConflict,
    InvalidEvent,
    InvalidName,
    MergeConflict,
    NotFound,
    NothingToMerge,
    PayloadTooLarge,
    ReducerRejected,
    StateReleased,
    UnknownCausation,
)
from continust.documents import diff as diffs
from continust.documents.diff import NullNotExpressible
from continust.log.reducers import UnknownReducer
from continust.schemas.registry import InvalidSchema, TypeExists
from continust.schemas.validation import SchemaViolation

STATUS_TABLE = """\
| status | code | when |
|---|---|---|
| 400 | `malformed_json`, `invalid_request`, `invalid_name` | the body is not JSON the log \
can store, the request does not match the schema (never 422), a name no record could have \
(see "What a name may contain") |
| 401 | `unauthorized` | no valid, unrevoked token |
| 403 | `forbidden` | a visible project, but a read-only token, or a member below editor, \
writes (below admin: changes a retention policy or compacts; reads or changes webhooks; \
encrypts a stream, previews or erases a data subject) |
| 404 | `not_found` | an unknown project, stream, branch, version, event or data subject, or \
one the token may not see |
| 409 | `stale_head`, `idempotency_conflict`, `stream_exists`, `already_exists`, \
`merge_conflict`, `tag_exists`, `already_erased`, `pipeline_running` | the branch moved \
from `expected_head` (`current_head` says where it is), an event id already recorded with \
other content, a stream or branch name taken, a merge's conflicting paths left unresolved \
(`conflicts` lists them), a tag name taken (tags never move), a data subject erased before; \
`pipeline_running`: a pipeline changed or deleted while it runs (pause it first), or a new \
spec its committed progress cannot go on with (send `reset`) |
| 410 | `state_released` | a version whose state (or event payload) the stream's retention \
policy released; its hashes and place in the graph remain |
| 413 | `body_too_large`, `payload_too_large` | a request body above the limit (refused \
before it is read), an event payload above `CONTINUST_MAX_PAYLOAD_BYTES` |
| 422 | `unknown_causation`, `reducer_rejected`, `invalid_event` | a well-formed request the \
domain rejects: a causation id naming no earlier event of the project, a reducer refusing an \
event (a JSON Patch that does not apply), an event id twice in one batch, an unknown reducer, \
an event type starting with `continust.` (the log's own: merges, promotions, reverts); \
`null_not_expressible`: a merge-patch diff to a state that sets a value to null, which RFC 7396 \
cannot say (`paths` names them; ask for the JSON Patch); `nothing_to_merge` for a branch \
already merged; \
`invalid_webhook`: a webhook URL that is not http(s) or reaches a non-public address, a \
malformed secret, a redelivery of a delivery that has not failed; `invalid_pipeline`: a \
pipeline spec that does not validate (`path`, a JSON Pointer into the spec, names where; \
`problems` lists each) |
| 422 | `schema_violation`, `invalid_schema` | a payload that does not fit its type's newest \
registered schema (`path` is the JSON Pointer of the failing part, `index` the event of the \
batch, `type` and `version` the schema's), or a type the project does not take; a JSON \
Schema its metaschema refuses |
| 409 | `type_exists` | an event type registered already (evolve it instead) |
| 422 | `bad_revision`, `ambiguous_name`, `bisect_refused`, `revert_conflict` | a revision \
that does not resolve \
(`main~99` walks past the root, `v12^3` names a parent there is not, `A..B` where one version \
is wanted; the detail names the part), a tag or new branch name revisions would misread \
(`v12`, `a..b`), \
a bisection whose good end fails or bad end holds, a \
revert that does not apply cleanly (`paths` lists where) |
| 429 | `too_many_feeds` | a token opening more live feeds than `CONTINUST_FEED_MAX_OPEN` at once |
| 429 | `rate_limited` | more requests with one token than `CONTINUST_API_RATE` allows \
(per web process); `Retry-After` says when to try again; other tokens are not affected |
| 503 | `database_busy` | a write that timed out waiting for the database's lock (SQLite \
has one writer at a time); `Retry-After` says when to try again |

A rejected request writes nothing: a batch is appended whole or not at all.
"""

READ_ERRORS: dict[int, type] = {400: BadRequest, 401: Error, 404: Error, 413: Error, 429: Error}
# Reads of a version's state or payload: a retention policy may have released it.
STATE_ERRORS: dict[int, type] = {**READ_ERRORS, 410: Error}
WRITE_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error, 409: Conflict, 422: Error}
# Reads that name versions by revision: one that does not resolve (``main~99`` past the
# root, ``v12^3``) is a 422 ``bad_revision``, never a schema error (those stay 400).
REVISION_ERRORS: dict[int, type] = {**READ_ERRORS, 422: Error}
REVISION_STATE_ERRORS: dict[int, type] = {**STATE_ERRORS, 422: Error}


def error_response(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    """Return an error body as every API error has it: a code and a detail."""
    return JsonResponse({"code": code, "detail": detail, **extra}, status=status)


@csrf_exempt  # the API takes no cookies; a POST to a wrong path is a 404, not a CSRF 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Answer any path under the API that names no operation."""
    return error_response(404, "not_found", "no such API resource")


def _issues(exc: ValidationError) -> list[dict[str, Any]]:
    # Only where and what: echoing the input back could return megabytes.
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors
    ]


def _on_validation(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(
        400, "invalid_request", "the request does not match the schema", errors=_issues(exc)
    )


def _on_http_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if exc.status_code == 400:
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return error_response(400, "malformed_json", f"{exc.message}{cause}")
    return error_response(exc.status_code, f"http_{exc.status_code}", exc.message)


def _on_unauthorized(request: HttpRequest, exc: Any) -> HttpResponse:
    response = error_response(
        401, "unauthorized", "send a valid API token: Authorization: Bearer ctn_..."
    )
    response["WWW-Authenticate"] = 'Bearer realm="continust"'
    return response


def _on_throttled(request: HttpRequest, exc: Any) -> HttpResponse:
    # ninja adds Retry-After (whole seconds) to this answer.
    return error_response(
        429,
        "rate_limited",
        f"this token made more than {settings.CONTINUST_API_RATE} requests; "
        "wait as Retry-After says",
    )


def _on_conflict(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(409, "stale_head", str(exc), current_head=exc.current_head)


def conflict_record(conflict: diffs.Conflict) -> dict[str, Any]:
    """Return a merge conflict as the API shows it: absent values null, named in ``absent``."""
    record: dict[str, Any] = {"path": conflict.path, "absent": []}
    for side in ("base", "ours", "theirs"):
        value = getattr(conflict, side)
        if value is diffs.MISSING:
            record["absent"].append(side)
            value = None
        record[side] = value
    return record


def _on_merge_conflict(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(
        409, "merge_conflict", str(exc), conflicts=[conflict_record(c) for c in exc.conflicts]
    )


def simple_handler(status: int, code: str) -> Callable[[HttpRequest, Any], HttpResponse]:
    def handler(request: HttpRequest, exc: Any) -> HttpResponse:
        return error_response(status, code, str(exc))

    return handler


def _on_null_not_expressible(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(422, "null_not_expressible", str(exc), paths=list(exc.paths))


def _on_operational_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if not is_busy(exc):
        raise exc
    return busy_response(
        error_response(503, "database_busy", "the database is busy with another write; try again")
    )


def _on_schema_violation(request: HttpRequest, exc: Any) -> HttpResponse:
    return error_response(
        422,
        "schema_violation",
        str(exc),
        path=exc.path,
        index=exc.index,
        type=exc.type,
        version=exc.version,
    )


def install(api: NinjaAPI) -> None:
    """Register the handlers on the API; the most specific exception class wins."""
    api.add_exception_handler(OperationalError, _on_operational_error)
    api.add_exception_handler(ValidationError, _on_validation)
    api.add_exception_handler(HttpError, _on_http_error)
    api.add_exception_handler(AuthenticationError, _on_unauthorized)
    api.add_exception_handler(Throttled, _on_throttled)
    api.add_exception_handler(ConcurrencyConflict, _on_conflict)
    api.add_exception_handler(NullNotExpressible, _on_null_not_expressible)
    api.add_exception_handler(MergeConflict, _on_merge_conflict)
    api.add_exception_handler(SchemaViolation, _on_schema_violation)
    handlers: dict[type[Exception], tuple[int, str]] = {
        InvalidName: (400, "invalid_name"),
        NotFound: (404, "not_found"),
        Forbidden: (403, "forbidden"),
        IdempotencyConflict: (409, "idempotency_conflict"),
        AlreadyExists: (409, "already_exists"),
        NothingToMerge: (422, "nothing_to_merge"),
        BodyTooLarge: (413, "body_too_large"),
        RequestDataTooBig: (413, "body_too_large"),
        PayloadTooLarge: (413, "payload_too_large"),
        UnknownCausation: (422, "unknown_causation"),
        ReducerRejected: (422, "reducer_rejected"),
        InvalidEvent: (422, "invalid_event"),
        UnknownReducer: (422, "invalid_event"),
        InvalidSchema: (422, "invalid_schema"),
        TypeExists: (409, "type_exists"),
        StateReleased: (410, "state_released"),
        AlreadyErased: (409, "already_erased"),
    }
    for exc_class, (status, code) in handlers.items():
        api.add_exception_handler(exc_class, simple_handler(status, code))

"""Webhooks over HTTP: a project's admins register, list, pause, resume, rotate the
secret of and remove webhooks, and read (and redeliver) their deliveries.

Everything here needs the admin role in the project (403 below it, 404 for strangers);
changes also need a write-scoped token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Status
from ninja.params import functions as param
from pydantic import ConfigDict

from api.access import project_for, token_of
from api.auth import Forbidden, visible_project
from api.errors import READ_ERRORS
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page
from api.schemas import Error, PageQuery, SlugPath, StrictSchema
from continust.core.parsing import BIGINT_MAX, CONTROLS, SPACES, TEXT_PATTERN
from continust.models import Project, Role, Webhook, WebhookDelivery
from continust.webhooks import registry
from continust.webhooks.records import delivery_record, webhook_record
from continust.webhooks.targets import URL_MAX

router = Router(tags=["webhooks"])

HOOKS = "/projects/{slug:slug}/webhooks"
HOOK = HOOKS + "/{webhook_id}"
ADMIN_READ_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error}
ADMIN_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error, 422: Error}

WebhookIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A webhook's id.")]
DeliveryIdPath = Annotated[int, param.Path(ge=0, le=BIGINT_MAX, description="A delivery's id.")]
SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/]+={0,2}$"
Secret = Annotated[
    str,
    Field(
        max_length=200,
        pattern=SECRET_PATTERN,
        description="`whsec_` and the base64 of a 24 to 64 byte key; omit it to have one "
        "generated.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    ),
]

SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 4,
    "url": "https://hooks.example.com/continust",
    "event_types": ["order.", "payment.taken"],
    "active": True,
    "position": "812.40",
    "created_at": "2026-12-06T04:00:00.000000+00:00",
    "created_by": "alice",
    "deliveries": {"pending": 1, "sending": 0, "delivered": 57, "failed": 2},
}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 61,
    "webhook": 4,
    "position": "812.40",
    "event": {
        "id": "0b9e3c1e-7d5a-4f61-9d7e-1f2a3b4c5d6e",
        "type": "order.placed",
        "stream": "orders",
        "position": 212,
    },
    "pipeline": None,
    "status": "pending",
    "next_attempt_at": "2026-12-06T04:01:00.000000+00:00",
    "delivered_at": None,
    "last_status_code": 503,
    "last_error": "",
    "attempts": [
        {
            "number": 1,
            "started_at": "2026-12-06T04:00:30.000000+00:00",
            "duration_ms": 120,
            "status_code": 503,
            "error": "",
            "ok": False,
        }
    ],
}


class WebhookIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/continust",
                    "event_types": ["order.", "payment.taken"],
                    "active": True,
                    "start": "now",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=URL_MAX,
        pattern=rf"^https?://[^{SPACES}{CONTROLS}]+$",
        description="Where to POST: http(s) only. Its host must resolve only to public "
        "addresses (loopback, private, link-local and reserved ones are refused, 422) "
        "unless the server allows them (CONTINUST_WEBHOOK_ALLOW_PRIVATE).",
        examples=["https://hooks.example.com/continust"],
    )
    event_types: list[Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)]] = (
        Field(
            default_factory=list,
            max_length=registry.MAX_EVENT_TYPES,
            description="Event type prefixes; an event whose type starts with one is delivered. "
            "Empty: every event.",
            examples=[["order.", "payment.taken"]],
        )
    )
    secret: Secret | None = None
    active: bool = Field(True, description="False registers it paused.")
    start: str = Field(
        registry.NOW,
        pattern=r"^(now|0|[0-9]{1,18}\.[0-9]{1,18})$",
        description="Where in the project's log it starts: `now` (events appended from now "
        "on), `0` (the whole log) or a log position `T.P`.",
    )


class SecretIn(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"secret": SECRET_EXAMPLE}]}
    )

    secret: Secret | None = None


class DeliveryCounts(StrictSchema):
    pending: int
    sending: int
    delivered: int
    failed: int


class WebhookOut(StrictSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: int
    url: str
    event_types: list[str]
    active: bool
    position: str = Field(description="The log position the dispatcher has read up to, `T.P`.")
    created_at: str | None
    created_by: str
    deliveries: DeliveryCounts


class WebhookCreated(WebhookOut):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{**WEBHOOK_EXAMPLE, "secret": SECRET_EXAMPLE}]},
    )

    secret: str = Field(description="The signing secret: shown here only, keep it.")


class WebhookPage(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"items": [WEBHOOK_EXAMPLE], "next": None}]}
    )

    items: list[WebhookOut]
    next: str | None


class SecretOut(StrictSchema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"secret": SECRET_EXAMPLE}]}
    )

    secret: str = Field(description="The new signing secret: shown here only, keep it.")


class AttemptOut(StrictSchema):
    number: int
    started_at: str | None
    duration_ms: int
    status_code: int | None = Field(description="The receiver's status; null on a network error.")
    error: str
    ok: bool


class DeliveredEvent(StrictSchema):
    id: str
    type: str
    stream: str
    position: int


class DeliveredResults(StrictSchema):
    name: str = Field(description="The pipeline whose sink is this webhook.")
    epoch: int | None = Field(description="The epoch whose results the delivery carries.")
    results: int = Field(description="How many results it carries.")


class DeliveryOut(StrictSchema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [DELIVERY_EXAMPLE]})

    id: int
    webhook: int
    position: str = Field(
        description="The event's log position, `T.P` (for a pipeline's results, the source "
        "cursor the epoch ends at)."
    )
    event: DeliveredEvent | None = Field(description="The event delivered; null for results.")
    pipeline: DeliveredResults | None = Field(
        description="The pipeline's results delivered (null for an event)."
    )
    status: Literal["pending", "sending", "delivered", "failed"]
    next_attempt_at: str | None = Field(description="When a pending delivery is tried next.")
    delivered_at: str | None
    last_status_code: int | None
    last_error: str
    attempts: list[AttemptOut]


class DeliveryPage(StrictSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"items": [DELIVERY_EXAMPLE], "next": "61"}]},
    )

    items: list[DeliveryOut]
    next: str | None


class DeliveryQuery(PageQuery):
    status: Literal["pending", "sending", "delivered", "failed"] | None = Field(
        None, description="Only deliveries in this status."
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="At most this many items.")


def administered(request: HttpRequest, slug: str, *, write: bool = False) -> Project:
    """The project whose webhooks the request may read (or, with ``write``, change)."""
    if write:
        return project_for(
            request, slug, write=True, role=Role.ADMIN, doing="managing the webhooks of"
        )
    project, membership = visible_project(token_of(request), slug)
    if not membership.allows(Role.ADMIN):
        raise Forbidden(f"the webhooks of {slug} need the admin role; you are a {membership.role}")
    return project


def actor(request: HttpRequest) -> str:
    return token_of(request).user.get_username()


@router.get(HOOKS, response={200: WebhookPage, **ADMIN_READ_ERRORS})
def list_webhooks(request: HttpRequest, slug: SlugPath, page: Query[PageQuery]) -> dict[str, Any]:
    """List the project's webhooks (admin), oldest first; secrets are never shown again."""
    project = administered(request, slug)
    rows, next_cursor = keyset_page(
        Webhook.objects.filter(project=project), "id", page.after, page.limit, int
    )
    return {"items": [webhook_record(w) for w in rows], "next": next_cursor}


@router.post(HOOKS, response={201: WebhookCreated, **ADMIN_ERRORS})
def add_webhook(request: HttpRequest, slug: SlugPath, body: WebhookIn) -> Status[dict[str, Any]]:
    """Register a webhook (write scope, admin role). Answers its signing secret, once.

    422 for a URL that is not http(s) or whose host is, or resolves to, a loopback,
    private, link-local or otherwise non-public address; for a malformed secret.
    """
    project = administered(request, slug, write=True)
    webhook, secret = registry.register(
        project,
        body.url,
        body.event_types,
        secret=body.secret,
        active=body.active,
        start=body.start,
        actor=actor(request),
    )
    return Status(201, {**webhook_record(webhook), "secret": secret})


@router.get(HOOK, response={200: WebhookOut, **ADMIN_READ_ERRORS})
def get_webhook(request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath) -> dict[str, Any]:
    """Return one webhook (admin) with the count of its deliveries in each status."""
    return webhook_record(registry.get(administered(request, slug), webhook_id))


@router.delete(HOOK, response={204: None, **ADMIN_ERRORS})
def remove_webhook(request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath) -> Status[None]:
    """Remove a webhook with its deliveries and their attempts (write scope, admin role)."""
    webhook = registry.get(administered(request, slug, write=True), webhook_id)
    registry.remove(webhook, actor=actor(request))
    return Status(204, None)


@router.post(HOOK + "/pause", response={200: WebhookOut, **ADMIN_ERRORS})
def pause_webhook(
    request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath
) -> dict[str, Any]:
    """Pause a webhook: nothing is delivered, its log position waits (write scope, admin)."""
    webhook = registry.get(administered(request, slug, write=True), webhook_id)
    return webhook_record(registry.set_active(webhook, False, actor=actor(request)))


@router.post(HOOK + "/resume", response={200: WebhookOut, **ADMIN_ERRORS})
def resume_webhook(
    request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath
) -> dict[str, Any]:
    """Resume a paused webhook: it catches up from its log position (write scope, admin)."""
    webhook = registry.get(administered(request, slug, write=True), webhook_id)
    return webhook_record(registry.set_active(webhook, True, actor=actor(request)))


@router.post(HOOK + "/secret", response={200: SecretOut, **ADMIN_ERRORS})
def rotate_secret(
    request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath, body: SecretIn
) -> dict[str, Any]:
    """Give the webhook a new signing secret, generated or given (write scope, admin).
    Deliveries from now on are signed with it; answered here only."""
    webhook = registry.get(administered(request, slug, write=True), webhook_id)
    return {"secret": registry.rotate_secret(webhook, body.secret, actor=actor(request))}


@router.get(HOOK + "/deliveries", response={200: DeliveryPage, **ADMIN_READ_ERRORS})
def list_deliveries(
    request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath, page: Query[DeliveryQuery]
) -> dict[str, Any]:
    """List a webhook's deliveries (admin), newest first, each with every attempt: its
    status code (null on a network error), duration and error."""
    webhook = registry.get(administered(request, slug), webhook_id)
    rows = (
        WebhookDelivery.objects.filter(webhook=webhook)
        .select_related("event__stream", "pipeline")
        .prefetch_related("tries")
        .order_by("-id")
    )
    if page.status is not None:
        rows = rows.filter(status=page.status)
    if page.after is not None:
        rows = rows.filter(pk__lt=int(page.after))
    found = list(rows[: page.limit + 1])
    more = len(found) > page.limit
    found = found[: page.limit]
    return {
        "items": [delivery_record(d) for d in found],
        "next": str(found[-1].pk) if more else None,
    }


@router.post(
    HOOK + "/deliveries/{delivery_id}/redeliver", response={202: DeliveryOut, **ADMIN_ERRORS}
)
def redeliver(
    request: HttpRequest, slug: SlugPath, webhook_id: WebhookIdPath, delivery_id: DeliveryIdPath
) -> Status[dict[str, Any]]:
    """Try a failed (given up) delivery again, with a fresh count of attempts (write
    scope, admin). 422 for a delivery that is not failed."""
    webhook = registry.get(administered(request, slug, write=True), webhook_id)
    found = registry.redeliver(webhook, delivery_id, actor=actor(request))
    return Status(202, delivery_record(found))

"""A project's webhooks: admins register, pause, resume, rotate the secret of and remove
them (the last two after a confirmation), and see every delivery with its attempts and
redeliver a failed one (after a confirmation)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.core.errors import ContinustError
from continust.models import DeliveryStatus, Membership, Role, Webhook, WebhookDelivery
from continust.webhooks import registry
from continust.webhooks.records import delivery_counts
from continust.webhooks.targets import URL_MAX, InvalidWebhook
from explorer.access import HtmxHttpRequest, actor_of, member_required, refuse
from explorer.confirm import confirmation, confirmed

DELIVERIES_SHOWN = 50


class WebhookForm(forms.Form):
    url = forms.CharField(label="URL", max_length=URL_MAX)
    event_types = forms.CharField(
        label="Event types",
        required=False,
        max_length=4000,
        help_text="Prefixes, separated by commas or spaces; empty: every event.",
    )
    secret = forms.CharField(
        label="Secret",
        required=False,
        max_length=200,
        help_text="Leave empty to have one generated (whsec_...).",
    )
    paused = forms.BooleanField(label="Register it paused", required=False)


def _list_url(membership: Membership) -> str:
    return reverse("webhooks", args=[membership.project.slug])


def _url(webhook: Webhook) -> str:
    return reverse("webhook", args=[webhook.project.slug, webhook.pk])


def _render_list(
    request: HtmxHttpRequest,
    membership: Membership,
    form: WebhookForm,
    *,
    created: Webhook | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    hooks = list(Webhook.objects.filter(project=membership.project))
    rows = [(w, delivery_counts(w)) for w in hooks]
    return render(
        request,
        "webhooks.html",
        {
            "membership": membership,
            "project": membership.project,
            "rows": rows,
            "form": form,
            "created": created,
            "secret": secret,
        },
        status=status,
    )


@require_GET
@member_required(Role.ADMIN)
def webhooks(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    return _render_list(request, membership, WebhookForm())


@require_POST
@member_required(Role.ADMIN)
def webhook_add(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _render_list(request, membership, form, status=400)
    types = form.cleaned_data["event_types"].replace(",", " ").split()
    try:
        webhook, secret = registry.register(
            membership.project,
            form.cleaned_data["url"].strip(),
            types,
            secret=form.cleaned_data["secret"].strip() or None,
            active=not form.cleaned_data["paused"],
            actor=actor_of(request),
        )
    except InvalidWebhook as err:
        form.add_error(None, str(err))
        return _render_list(request, membership, form, status=400)
    return _render_list(request, membership, WebhookForm(), created=webhook, secret=secret)


def _webhook_page(
    request: HtmxHttpRequest, membership: Membership, webhook: Webhook, *, secret: str = ""
) -> HttpResponse:
    status = request.GET.get("status", "")
    found = (
        WebhookDelivery.objects.filter(webhook=webhook)
        .select_related("event__stream", "pipeline")
        .prefetch_related("tries")
        .order_by("-id")
    )
    if status in DeliveryStatus.values:
        found = found.filter(status=status)
    else:
        status = ""
    return render(
        request,
        "webhook.html",
        {
            "membership": membership,
            "project": membership.project,
            "webhook": webhook,
            "counts": delivery_counts(webhook),
            "deliveries": list(found[:DELIVERIES_SHOWN]),
            "shown": DELIVERIES_SHOWN,
            "statuses": DeliveryStatus.choices,
            "status": status,
            "secret": secret,
        },
    )


@require_GET
@member_required(Role.ADMIN)
def webhook(request: HtmxHttpRequest, membership: Membership, webhook_id: int) -> HttpResponse:
    return _webhook_page(request, membership, registry.get(membership.project, webhook_id))


@require_POST
@member_required(Role.ADMIN)
def webhook_active(
    request: HtmxHttpRequest, membership: Membership, webhook_id: int
) -> HttpResponse:
    found = registry.get(membership.project, webhook_id)
    wanted = request.POST.get("active")
    if wanted not in ("yes", "no"):
        messages.error(request, "Say yes or no: should the webhook deliver?")
        return redirect(_url(found))
    registry.set_active(found, wanted == "yes", actor=actor_of(request))
    messages.success(
        request,
        "The webhook delivers again, from where it stopped."
        if wanted == "yes"
        else "The webhook is paused: nothing is delivered until it is resumed.",
    )
    return redirect(_url(found))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def webhook_rotate(
    request: HtmxHttpRequest, membership: Membership, webhook_id: int
) -> HttpResponse:
    found = registry.get(membership.project, webhook_id)
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Rotate the secret of the webhook to {found.url}?",
            facts=[
                "a new secret is generated and shown once; the current one is forgotten",
                "every delivery from now on, retries included, is signed with the new secret: "
                "a receiver still checking the old one refuses them",
            ],
            action="Rotate the secret",
            back=_url(found),
        )
    secret = registry.rotate_secret(found, actor=actor_of(request))
    return _webhook_page(request, membership, found, secret=secret)


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def webhook_remove(
    request: HtmxHttpRequest, membership: Membership, webhook_id: int
) -> HttpResponse:
    found = registry.get(membership.project, webhook_id)
    if not confirmed(request):
        counts = delivery_counts(found)
        return confirmation(
            request,
            membership,
            title=f"Remove the webhook to {found.url}?",
            facts=[
                f"its {sum(counts.values())} deliveries and every attempt recorded are deleted",
                f"deliveries not yet made are never made: {counts['pending'] + counts['sending']}",
                "the removal is recorded in the audit trail",
            ],
            action="Remove the webhook",
            back=_url(found),
        )
    count = registry.remove(found, actor=actor_of(request))
    messages.success(request, f"The webhook is removed, with its {count} deliveries.")
    return redirect(_list_url(membership))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def webhook_redeliver(
    request: HtmxHttpRequest, membership: Membership, webhook_id: int, delivery_id: int
) -> HttpResponse:
    found = registry.get(membership.project, webhook_id)
    chosen = registry.delivery_of(found, delivery_id)
    if not confirmed(request):
        problem = (
            ""
            if chosen.status == DeliveryStatus.FAILED
            else f"Delivery {chosen.pk} is {chosen.status}: only a failed one is redelivered."
        )
        attempts = chosen.tries.count()
        return confirmation(
            request,
            membership,
            title=f"Redeliver {_what(chosen)} (delivery {chosen.pk}) to {found.url}?",
            facts=[
                f"the event is POSTed again, up to "
                f"{_max_attempts()} attempts with backoff; the receiver may get it twice",
                f"its {attempts} attempt{pluralize(attempts)} so far stay in its history",
            ],
            action="Redeliver",
            back=_url(found),
            problem=problem,
        )
    try:
        registry.redeliver(found, chosen.pk, actor=actor_of(request))
    except ContinustError as err:
        return refuse(request, err, _url(found))
    messages.success(request, f"Delivery {chosen.pk} is queued again.")
    return redirect(_url(found))


def _max_attempts() -> int:
    return int(settings.CONTINUST_WEBHOOK_MAX_ATTEMPTS)


# -- URLs, included by explorer.urls ----------------------------------------------------------

P = "p/<slug:slug>/webhooks/"
W = P + "<int:webhook_id>/"
urlpatterns = [
    path(P, webhooks, name="webhooks"),
    path(P + "add/", webhook_add, name="webhook-add"),
    path(W, webhook, name="webhook"),
    path(W + "active/", webhook_active, name="webhook-active"),
    path(W + "rotate/", webhook_rotate, name="webhook-rotate"),
    path(W + "remove/", webhook_remove, name="webhook-remove"),
    path(
        W + "deliveries/<int:delivery_id>/redeliver/", webhook_redeliver, name="webhook-redeliver"
    ),
]


def _what(delivery: WebhookDelivery) -> str:
    """What a delivery carries, in a few words: its event's type, or a pipeline's epoch."""
    if delivery.event is not None:
        return delivery.event.type
    name = delivery.pipeline.name if delivery.pipeline is not None else "a deleted pipeline"
    return f"the results of {name}, epoch {delivery.epoch}"

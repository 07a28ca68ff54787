"""The explorer's Subscriptions page: each subscription of a project, where it stands and
what it could not handle; admins reset one, replay its parked events, start or stop its
consumers on workers.

The views only parse input and call ``continust.subscriptions.registry``; reset and
replay go through a confirmation page (``explorer.confirm``) that says what they do.
This module also holds the page's URL patterns, which ``explorer.urls`` includes.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.core.errors import ContinustError, InvalidName, NotFound
from continust.models import Membership, Role, Subscription
from continust.subscriptions import registry
from explorer.access import HtmxHttpRequest, member_required
from explorer.confirm import confirmation, confirmed

PARKED_SHOWN = 20


def _subscription(membership: Membership, name: str) -> Subscription:
    try:
        return registry.get_subscription(membership.project, name)
    except (InvalidName, NotFound):
        raise Http404("No such subscription.") from None


def _back(membership: Membership) -> str:
    return reverse("subscriptions", args=[membership.project.slug])


@require_GET
@member_required()
def subscriptions_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = [
        (shown, registry.parked_messages(shown.subscription, PARKED_SHOWN) if shown.parked else [])
        for shown in registry.overview(membership.project)
    ]
    return render(
        request,
        "subscriptions.html",
        {
            "membership": membership,
            "project": membership.project,
            "rows": rows,
            "can_admin": membership.allows(Role.ADMIN),
        },
    )


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def subscription_reset(request: HtmxHttpRequest, membership: Membership, name: str) -> HttpResponse:
    subscription = _subscription(membership, name)
    plan = registry.plan_reset(subscription)
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Reset subscription {subscription.name}?",
            facts=[plan.question()],
            action="Reset",
            back=_back(membership),
        )
    try:
        registry.reset(subscription)
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, plan.question().replace("Reset", "Did reset", 1))
    return redirect(_back(membership))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def subscription_replay(
    request: HtmxHttpRequest, membership: Membership, name: str
) -> HttpResponse:
    subscription = _subscription(membership, name)
    parked = registry.describe(subscription).parked
    if not confirmed(request):
        return confirmation(
            request,
            membership,
            title=f"Replay the parked events of {subscription.name}?",
            facts=[
                f"Queue the {parked} parked events of subscription {subscription.name!r} "
                "again, with their attempts counted afresh; its consumers handle them next."
            ],
            action="Replay parked events",
            back=_back(membership),
            problem="" if parked else "Nothing is parked.",
        )
    count = registry.replay_parked(subscription)
    messages.success(request, f"Queued {count} parked events of {subscription.name} again.")
    return redirect(_back(membership))


@require_POST
@member_required(Role.ADMIN)
def subscription_consumers(request: HttpRequest, membership: Membership, name: str) -> HttpResponse:
    subscription = _subscription(membership, name)
    if request.POST.get("run") == "stop":
        registry.stop_consumers(subscription)
        messages.success(request, f"The workers' consumers of {subscription.name} stop.")
        return redirect(_back(membership))
    try:
        asked = registry.start_consumers(subscription)
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Asked workers for {asked} consumers of {subscription.name}.")
    return redirect(_back(membership))


PROJECT = "p/<slug:slug>/subscriptions/"

urlpatterns = [
    path(PROJECT, subscriptions_page, name="subscriptions"),
    path(PROJECT + "<slug:name>/reset/", subscription_reset, name="subscription-reset"),
    path(PROJECT + "<slug:name>/replay/", subscription_replay, name="subscription-replay"),
    path(PROJECT + "<slug:name>/consumers/", subscription_consumers, name="subscription-consumers"),
]

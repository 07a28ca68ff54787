"""The explorer's Projections page: a project's read models, how far behind, and control.

Every member sees each projection's status, log position, lag (events behind the log's
end), rate and last error; admins run one now or rebuild it (after a confirmation page
naming the tables it replaces). The views call ``continust.projections.control``; a
Celery worker does the work. This module also holds the page's URL patterns.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from continust.core.errors import ContinustError, NotFound
from continust.models import Membership, Role
from continust.models import Projection as ProjectionRow
from continust.projections import control
from explorer.access import HtmxHttpRequest, actor_of, member_required
from explorer.confirm import confirmation, confirmed


def _projection_of(membership: Membership, name: str) -> ProjectionRow:
    try:
        return control.get_projection(membership.project, name)
    except NotFound:
        raise Http404("No such projection.") from None


@require_GET
@member_required()
def projection_list(request: HtmxHttpRequest, membership: Membership) -> HttpResponse:
    rows = [control.describe(row) for row in control.ensure(membership.project)]
    return render(
        request,
        "projections.html",
        {
            "membership": membership,
            "project": membership.project,
            "projections": rows,
            "can_act": membership.allows(Role.ADMIN),
        },
    )


@require_POST
@member_required(Role.ADMIN)
def projection_run(request: HttpRequest, membership: Membership, projection: str) -> HttpResponse:
    """Send the projection to a worker now (a failed one resumes where it failed)."""
    row = _projection_of(membership, projection)
    try:
        control.start(row)
    except ContinustError as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Sent {row.name} to a worker.")
    return redirect(reverse("projections", args=[membership.project.slug]))


@require_http_methods(["GET", "POST"])
@member_required(Role.ADMIN)
def projection_rebuild(
    request: HtmxHttpRequest, membership: Membership, projection: str
) -> HttpResponse:
    """Rebuild a projection from position 0, once its confirmation page says what it replaces."""
    row = _projection_of(membership, projection)
    back = reverse("projections", args=[membership.project.slug])
    try:
        plan = control.rebuild_plan(row)
    except ContinustError as err:
        return confirmation(
            request,
            membership,
            title=f"Rebuild projection {row.name}?",
            facts=[],
            action="Rebuild",
            back=back,
            problem=str(err),
        )
    if confirmed(request):
        control.rebuild(row, actor=actor_of(request))
        messages.success(request, f"Rebuilding {row.name} from position 0.")
        return redirect(back)
    replaces = ", ".join(plan.tables) or "no tables yet"
    facts = [
        f"replaces {replaces}: {plan.rows:,} row(s) built from {plan.events:,} event(s), "
        f"up to log position {plan.position}",
        "fills fresh tables from position 0 of the log on a worker; the current ones stay "
        "readable until the new ones have caught up, then are dropped in the same transaction"
        " that swaps the new ones in",
    ]
    if plan.running:
        facts.append("the rebuild already under way starts over")
    return confirmation(
        request,
        membership,
        title=f"Rebuild projection {row.name}?",
        facts=facts,
        action=f"Rebuild {row.name}",
        back=back,
    )


urlpatterns = [
    path("p/<slug:slug>/projections/", projection_list, name="projections"),
    path("p/<slug:slug>/projections/<slug:projection>/run/", projection_run, name="projection-run"),
    path(
        "p/<slug:slug>/projections/<slug:projection>/rebuild/",
        projection_rebuild,
        name="projection-rebuild",
    ),
]

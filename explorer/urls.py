"""The explorer's URLs: projects, streams, versions, comparisons and causation."""

from __future__ import annotations

from django.urls import include, path

from explorer import views

urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/", views.project, name="project"),
    path("p/<slug:slug>/s/<int:stream_id>/", views.stream_page, name="stream"),
    path(
        "p/<slug:slug>/s/<int:stream_id>/v/<int:version_id>/", views.version_detail, name="version"
    ),
    path(
        "p/<slug:slug>/s/<int:stream_id>/v/<int:version_id>/state.json",
        views.version_state,
        name="version-state",
    ),
    path("p/<slug:slug>/s/<int:stream_id>/compare/", views.compare, name="compare"),
    path("p/<slug:slug>/s/<int:stream_id>/jump/", views.jump, name="jump"),
    path("p/<slug:slug>/s/<int:stream_id>/fork/", views.fork_branch, name="fork"),
    path("p/<slug:slug>/s/<int:stream_id>/merge/", views.merge_branches, name="merge"),
    path("p/<slug:slug>/events/<uuid:event_id>/", views.causation, name="causation"),
    path("", include("explorer.replays")),  # replays: start, progress, cancel, promote
    path("", include("explorer.reviews")),  # reviews: open, comment, check, decide
    path("", include("explorer.audit")),  # audit reports and the pinned export
    path("", include("explorer.blame")),  # blame a path of a version's state
    path("", include("explorer.integrity")),  # verify and digest
    path("", include("explorer.verifications")),  # verify on the workers
    path("", include("explorer.members")),  # members and the review rule
    path("", include("explorer.event_types")),  # the event-type registry
    path("", include("explorer.pipelines")),  # pipelines: list, start, watch, control
    path("", include("explorer.projections")),  # projections: lag, run, rebuild
    path("", include("explorer.erasure")),  # encrypted streams, erasing a data subject
    path("", include("explorer.retention")),  # retention policy, dry run, compactions
    path("", include("explorer.revisions")),  # tag and revert a version, confirmed
    path("", include("explorer.bisect")),  # bisect a stream by a JSON Pointer
    path("", include("explorer.log")),  # all events, their live feed, a stream as of a moment
    path("", include("explorer.webhooks")),  # webhooks: register, pause, deliveries, redeliver
    path("", include("explorer.subscriptions")),  # subscriptions: position, lag, parked
]

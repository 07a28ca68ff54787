"""Retention over HTTP: a stream's policy, the dry run of a compaction, and compactions.

Reading needs membership. Changing a policy and compacting need a write-scoped
token and the admin role: a compaction releases what no one can bring back.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.access import stream_for, token_of
from api.errors import READ_ERRORS
from api.pagination import cursor_key
from api.schemas import (
    CompactionIdPath,
    CompactionOut,
    CompactionPage,
    Error,
    PageQuery,
    PlanOut,
    PolicyIn,
    RetentionOut,
    SlugPath,
    StreamPath,
)
from continust.core.errors import InvalidEvent
from continust.log.policy import Policy, make_policy, unused_settings
from continust.models import Compaction, Role, Stream
from continust.read.records import compaction_record, retention_record
from continust.retention import compaction
from continust.retention.policies import set_policy

router = Router(tags=["retention"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"
ADMIN_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error, 422: Error}


def administered_stream(request: HttpRequest, slug: str, name: str) -> Stream:
    """Return a stream whose retention the request may change; Forbidden below admin."""
    return stream_for(
        request, slug, name, write=True, role=Role.ADMIN, doing="changing retention in"
    )


def policy_from(body: PolicyIn) -> Policy:
    """Return the policy a request body asks for; InvalidEvent says what is wrong."""
    options = body.model_dump(exclude={"kind"}, exclude_none=True)
    unused = unused_settings(body.kind, options)
    if unused:
        raise InvalidEvent(f"{body.kind} policies take no {', '.join(unused)}")
    return make_policy(body.kind, **options)


@router.get(STREAM + "/retention", response={200: RetentionOut, **READ_ERRORS})
def get_retention(request: HttpRequest, slug: SlugPath, name: StreamPath) -> dict[str, Any]:
    """Return the stream's retention policy and the bytes its rows take now."""
    return retention_record(stream_for(request, slug, name))


@router.put(STREAM + "/retention", response={200: RetentionOut, **ADMIN_ERRORS})
def set_retention(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: PolicyIn
) -> dict[str, Any]:
    """Give the stream a retention policy (needs write scope and the admin role).

    Appends follow it at once; stored states and payloads follow at the next
    compaction. The change is recorded in the project's audit stream. 422 for a
    setting the kind does not take or a value it refuses, and for the audit stream,
    which keeps everything; nothing changes then.
    """
    stream = administered_stream(request, slug, name)
    policy = policy_from(body)
    set_policy(stream, policy, actor=token_of(request).user.get_username())
    return retention_record(stream)


@router.get(STREAM + "/retention/plan", response={200: PlanOut, **READ_ERRORS})
def plan_compaction(request: HttpRequest, slug: SlugPath, name: StreamPath) -> dict[str, Any]:
    """The dry run: what a compaction of the stream now would store, drop and release,
    and which versions beyond the horizon stay, and why. Writes nothing."""
    return compaction.plan(stream_for(request, slug, name)).as_dict()


@router.post(STREAM + "/compactions", response={202: CompactionOut, **ADMIN_ERRORS})
def request_compaction(
    request: HttpRequest, slug: SlugPath, name: StreamPath
) -> Status[dict[str, Any]]:
    """Compact the stream under its policy, on a worker (needs write scope and the admin role).

    Answers 202 with the compaction; poll it by id. While one is pending or running,
    that one is answered instead of a second. 422 for the audit stream.
    """
    stream = administered_stream(request, slug, name)
    found = compaction.request(stream, actor=token_of(request).user.get_username())
    found.stream = stream
    return Status(202, compaction_record(found))


@router.get(STREAM + "/compactions", response={200: CompactionPage, **READ_ERRORS})
def list_compactions(
    request: HttpRequest, slug: SlugPath, name: StreamPath, page: Query[PageQuery]
) -> dict[str, Any]:
    """List the stream's compactions, newest first."""
    stream = stream_for(request, slug, name)
    rows = Compaction.objects.filter(stream=stream).select_related("record").order_by("-id")
    if page.after is not None:
        rows = rows.filter(pk__lt=cursor_key(page.after, int))
    found = list(rows[: page.limit + 1])
    more = len(found) > page.limit
    found = found[: page.limit]
    for row in found:
        row.stream = stream
    return {
        "items": [compaction_record(c) for c in found],
        "next": str(found[-1].pk) if more else None,
    }


@router.get(STREAM + "/compactions/{compaction_id}", response={200: CompactionOut, **READ_ERRORS})
def get_compaction(
    request: HttpRequest, slug: SlugPath, name: StreamPath, compaction_id: CompactionIdPath
) -> dict[str, Any]:
    """Return one of the stream's compactions: its progress, or what it did."""
    stream = stream_for(request, slug, name)
    found = compaction.get(stream, compaction_id)
    found.stream = stream
    return compaction_record(found)

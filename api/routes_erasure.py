"""Erasure over HTTP: a stream's encryption of personal data, and erasing a data subject.

Reading a stream's setting needs membership. Changing it, previewing an erasure and
erasing need the admin role (and a write-scoped token to change anything): an erasure
destroys a key, and nothing brings it back.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.access import project_for, stream_for, token_of
from api.auth import Forbidden, visible_project
from api.errors import READ_ERRORS
from api.schemas import (
    ErasureIn,
    ErasureOut,
    ErasurePreviewOut,
    Error,
    PersonalIn,
    PersonalOut,
    SlugPath,
    StreamPath,
    SubjectQuery,
)
from continust.audit.erasure import affected_events, erase, set_personal, subject_key
from continust.models import Project, Role, Stream

router = Router(tags=["erasure"])

STREAM = "/projects/{slug:slug}/streams/{streamname:name}"
ADMIN_ERRORS: dict[int, type] = {**READ_ERRORS, 403: Error, 422: Error}
ERASE_ERRORS: dict[int, type] = {**ADMIN_ERRORS, 409: Error}


def _personal(stream: Stream) -> dict[str, Any]:
    member = stream.personal["subject"] if stream.personal else None
    return {"stream": stream.name, "subject_member": member}


@router.get(STREAM + "/personal", response={200: PersonalOut, **READ_ERRORS})
def get_personal(request: HttpRequest, slug: SlugPath, name: StreamPath) -> dict[str, Any]:
    """Whether the stream stores its payloads encrypted per data subject, and which
    member names the subject."""
    return _personal(stream_for(request, slug, name))


@router.put(STREAM + "/personal", response={200: PersonalOut, **ADMIN_ERRORS})
def set_personal_data(
    request: HttpRequest, slug: SlugPath, name: StreamPath, body: PersonalIn
) -> dict[str, Any]:
    """Encrypt the stream's payloads per data subject from now on, or stop (write scope,
    admin role). Recorded in the project's audit stream; events already recorded keep
    their form. 422 for the audit stream, which is never encrypted."""
    stream = stream_for(
        request, slug, name, write=True, role=Role.ADMIN, doing="encrypting the streams of"
    )
    set_personal(stream, body.subject_member, actor=token_of(request).user.get_username())
    return _personal(stream)


def _administered(request: HttpRequest, slug: str) -> Project:
    project, membership = visible_project(token_of(request), slug)
    if not membership.allows(Role.ADMIN):
        raise Forbidden(f"erasing in {slug} needs the admin role; you are a {membership.role}")
    return project


@router.get(
    "/projects/{slug:slug}/erasures/preview",
    response={200: ErasurePreviewOut, **READ_ERRORS, 403: Error},
)
def preview_erasure(
    request: HttpRequest, slug: SlugPath, query: Query[SubjectQuery]
) -> dict[str, Any]:
    """The events erasing the subject would redact (admin); changes nothing. 404 for a
    subject the project never encrypted anything for."""
    project = _administered(request, slug)
    row = subject_key(project, query.subject)
    events = affected_events(project, query.subject)
    return {
        "subject": query.subject,
        "erased": row.key is None,
        "events": [event.as_dict() for event in events],
    }


@router.post("/projects/{slug:slug}/erasures", response={201: ErasureOut, **ERASE_ERRORS})
def erase_subject(request: HttpRequest, slug: SlugPath, body: ErasureIn) -> Status[dict[str, Any]]:
    """Erase a data subject (write scope, admin role): destroy its key, so its personal
    values read `[erased]` on every surface while events, states and hashes stay as they
    are (`verify` still passes). Recorded as a `subject.erased` audit event; answers the
    events it redacted. 404 for an unknown subject, 409 `already_erased` for one erased
    before; nothing changes then."""
    project = project_for(request, slug, write=True, role=Role.ADMIN, doing="erasing in")
    done = erase(
        project, body.subject, actor=token_of(request).user.get_username(), reason=body.reason
    )
    return Status(201, done.as_dict())

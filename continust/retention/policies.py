"""Setting a stream's retention policy: checked, applied, and recorded in the audit trail."""

from __future__ import annotations

from typing import Final

from django.db import transaction

from continust.audit.trail import is_audit_stream, record
from continust.core.errors import InvalidEvent
from continust.log.policy import Policy, policy_of
from continust.models import Stream

SET_EVENT: Final = "retention.set"


def set_policy(stream: Stream, policy: Policy, *, actor: str) -> Stream:
    """Give a stream a new policy and record the change in the project's audit stream.

    The policy takes effect for appends at once; stored states and payloads follow at
    the next compaction.
    """
    if is_audit_stream(stream):
        raise InvalidEvent("the audit stream is kept forever; its policy cannot change")
    with transaction.atomic():
        locked = Stream.objects.select_for_update().get(pk=stream.pk)
        before = policy_of(locked)
        locked.retention = policy.kind
        if policy.selective:
            locked.snapshot_every = policy.snapshot_every
        locked.horizon_versions = policy.horizon_versions if policy.ephemeral else None
        locked.horizon_age = policy.horizon_age if policy.ephemeral else None
        locked.save(
            update_fields=["retention", "snapshot_every", "horizon_versions", "horizon_age"]
        )
        if before != policy_of(locked):
            record(
                stream.project,
                SET_EVENT,
                {"stream": stream.name, "before": before.as_dict(), "after": policy.as_dict()},
                actor=actor,
            )
    for name in ("retention", "snapshot_every", "horizon_versions", "horizon_age"):
        setattr(stream, name, getattr(locked, name))
    return stream

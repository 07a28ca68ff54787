"""Data subjects and their keys: which payload members are personal, sealing them on
append, and revealing them for readers.

A member is personal when its stream is encrypted (``Stream.personal`` names the member
that holds the subject; every other top-level member is personal) or when the event
type's newest schema in the project's registry (``continust.schemas.registry``) marks
it (``"x-personal": true``, with the subject in the property marked
``"x-subject": true``). Each subject has one key per project (``SubjectKey``), wrapped
by ``CONTINUST_MASTER_KEY`` when it is set. Erasure (``continust.audit.erasure``)
destroys the key; afterwards readers see ``ERASED`` where the values were.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from continust.core.errors import InvalidEvent, InvalidName, SubjectErased
from continust.log.canonical import storable
from continust.log.sealing import (
    ERASED,
    Unreadable,
    is_sealed,
    new_key,
    replace_sealed,
    seal,
    subjects_in,
    unseal,
    unwrap_key,
    wrap_key,
)
from continust.log.states import state_of
from continust.models import Event, Stream, SubjectKey, Version
from continust.schemas.registry import newest_schema

UNREADABLE = "[unreadable]"
"""Shown for a sealed value its subject's key does not open (forged or altered)."""
SUBJECT_MAX = 200


@dataclass(frozen=True)
class Marks:
    """Which members of an event's payload are personal, and which names the subject.

    ``members`` None: every top-level member but the subject's.
    """

    subject: str
    members: frozenset[str] | None = None

    def personal(self, member: str) -> bool:
        if member == self.subject:
            return False
        return self.members is None or member in self.members


def marks_for(stream: Stream, event_type: str) -> Marks | None:
    """Return what is personal in events of this type on this stream, or None: the
    stream's setting first, then the type's newest schema in the project's registry."""
    if stream.personal:
        return Marks(subject=str(stream.personal["subject"]))
    return schema_marks(newest_schema(stream.project, event_type), event_type)


def schema_marks(schema: dict[str, Any] | None, event_type: str) -> Marks | None:
    """Read the personal marks of an event type's JSON Schema: the top-level properties
    annotated ``"x-personal": true``, and the one annotated ``"x-subject": true`` that
    names the data subject. None when nothing is marked personal."""
    if not schema or not isinstance(schema.get("properties"), dict):
        return None
    properties = schema["properties"]
    personal = frozenset(
        name
        for name, sub in properties.items()
        if isinstance(sub, dict) and sub.get("x-personal") is True
    )
    if not personal:
        return None
    subjects = [
        name
        for name, sub in properties.items()
        if isinstance(sub, dict) and sub.get("x-subject") is True
    ]
    if len(subjects) != 1:
        raise InvalidEvent(
            f"event type {event_type!r} marks personal properties, so its schema must mark "
            f'exactly one property "x-subject": true to name the data subject'
        )
    return Marks(subject=subjects[0], members=personal - {subjects[0]})


def check_subject_member(member: object) -> str:
    """Return a valid name for the payload member that names the subject."""
    if not isinstance(member, str) or not member.strip() or len(member) > SUBJECT_MAX:
        raise InvalidEvent("the subject member must be a non-empty name of at most 200 characters")
    try:
        storable(member)
    except ValueError as err:
        raise InvalidEvent(f"the subject member is refused: {err}") from None
    return member


def check_subject(subject: object) -> str:
    """Return a valid data subject id: a non-empty string of at most 200 characters that
    the log can store."""
    if not isinstance(subject, str) or not subject.strip() or len(subject) > SUBJECT_MAX:
        raise InvalidName(
            f"a data subject is a non-empty string of at most {SUBJECT_MAX} characters"
        )
    try:
        storable(subject)
    except ValueError as err:
        raise InvalidName(f"the data subject is refused: {err}") from None
    return subject


# -- keys ---------------------------------------------------------------------------------


def _master_key() -> bytes | None:
    text = settings.CONTINUST_MASTER_KEY
    if not text:
        return None
    try:
        key = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != 32:
        raise ImproperlyConfigured(
            "CONTINUST_MASTER_KEY must be 32 bytes in URL-safe base64 (see docs/erasure.md)"
        )
    return key


def _stored(key: bytes) -> tuple[bytes, bool]:
    master = _master_key()
    return (wrap_key(key, master), True) if master is not None else (key, False)


def _opened(row: SubjectKey) -> bytes | None:
    if row.key is None:
        return None
    stored = bytes(row.key)
    if not row.wrapped:
        return stored
    master = _master_key()
    if master is None:
        raise ImproperlyConfigured(
            f"the key of data subject {row.subject!r} is wrapped: set CONTINUST_MASTER_KEY"
        )
    return unwrap_key(stored, master)


def sealing_key(project_id: int, subject: str) -> bytes:
    """Return the subject's key, creating it on first use; refuse an erased subject."""
    row = SubjectKey.objects.filter(project_id=project_id, subject=subject).first()
    if row is None:
        stored, wrapped = _stored(new_key())
        try:
            with transaction.atomic():
                row = SubjectKey.objects.create(
                    project_id=project_id, subject=subject, key=stored, wrapped=wrapped
                )
        except IntegrityError:
            row = SubjectKey.objects.get(project_id=project_id, subject=subject)
    key = _opened(row)
    if key is None:
        raise SubjectErased(
            f"data subject {subject!r} was erased; its personal data is no longer recorded"
        )
    return key


# -- sealing on append ------------------------------------------------------------------


def seal_payload(stream: Stream, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the payload as stored: its personal values sealed with the subject's key.

    Values already sealed (a revert, an import) and nulls (a merge patch's deletion)
    stay as they are; the subject is needed only when something is left to seal.
    """
    marks = marks_for(stream, event_type)
    if marks is None:
        return payload
    if stream.reducer == "patch":
        return _seal_operations(stream, marks, payload)
    todo = [
        name
        for name, value in payload.items()
        if marks.personal(name) and value is not None and not is_sealed(value)
    ]
    if not todo:
        return payload
    key, subject = _subject_key(stream, marks, payload)
    sealed = {
        name: seal(payload[name], key=key, project=stream.project_id, subject=subject)
        for name in todo
    }
    return {**payload, **sealed}


def _seal_operations(stream: Stream, marks: Marks, payload: dict[str, Any]) -> dict[str, Any]:
    """Seal the values of a JSON Patch payload's operations (the paths stay readable)."""
    operations = payload.get("patch")
    if not isinstance(operations, list):
        return payload
    todo = [
        index
        for index, op in enumerate(operations)
        if isinstance(op, dict) and op.get("value") is not None and not is_sealed(op["value"])
    ]
    if not todo:
        return payload
    key, subject = _subject_key(stream, marks, payload)
    sealed = list(operations)
    for index in todo:
        op = operations[index]
        sealed[index] = {
            **op,
            "value": seal(op["value"], key=key, project=stream.project_id, subject=subject),
        }
    return {**payload, "patch": sealed}


def _subject_key(stream: Stream, marks: Marks, payload: dict[str, Any]) -> tuple[bytes, str]:
    subject = payload.get(marks.subject)
    if not isinstance(subject, str) or not subject.strip() or len(subject) > SUBJECT_MAX:
        raise InvalidEvent(
            f"stream {stream.name} keeps personal data: the payload needs its data subject "
            f"in member {marks.subject!r} (a non-empty string of at most {SUBJECT_MAX} "
            "characters)"
        )
    return sealing_key(stream.project_id, subject), subject


# -- revealing for readers ----------------------------------------------------------------


class Revealer:
    """Opens the sealed values of one project's documents, each subject's key read once."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self._keys: dict[str, bytes | None] = {}

    def _load(self, subjects: set[str]) -> None:
        missing = subjects - self._keys.keys()
        if not missing:
            return
        rows = SubjectKey.objects.filter(project_id=self.project_id, subject__in=missing)
        for row in rows:
            self._keys[row.subject] = _opened(row)
        for subject in missing - self._keys.keys():
            self._keys[subject] = None

    def _open(self, sealed: dict[str, Any]) -> Any:
        key = self._keys.get(sealed["subject"])
        if key is None:
            return ERASED
        try:
            return unseal(sealed, key=key, project=self.project_id)
        except Unreadable:
            return UNREADABLE

    def reveal(self, document: Any) -> Any:
        """Return the document as a reader sees it: plain values, or ``ERASED``."""
        subjects = subjects_in(document)
        if not subjects:
            return document
        self._load(subjects)
        return replace_sealed(document, self._open)


def reveal(project_id: int, document: Any) -> Any:
    """Return one document of a project as a reader sees it."""
    return Revealer(project_id).reveal(document)


def readable_state(version: Version, revealer: Revealer | None = None) -> Any:
    """Return a version's state as a reader sees it (``state_of``, revealed)."""
    revealer = revealer if revealer is not None else Revealer(version.stream.project_id)
    return revealer.reveal(state_of(version))


def readable_event(event: Event, revealer: Revealer | None = None) -> Event:
    """Return a copy of an event whose payload is as a reader sees it; never save it."""
    revealer = revealer if revealer is not None else Revealer(event.project_id)
    payload = revealer.reveal(event.payload)
    if payload is event.payload:
        return event
    shown = copy.copy(event)
    shown.payload = payload
    return shown

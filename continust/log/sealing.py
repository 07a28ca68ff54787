"""Sealed values: personal data stored encrypted with its data subject's key.

A sealed value is a JSON object ``{"$sealed": 1, "subject": ID, "nonce": B64,
"ciphertext": B64}``: AES-256-GCM (``cryptography``) over the canonical JSON of the
plain value, bound to the project and the subject as associated data. It is valid JSON
made only of strings and a small integer, so it round-trips exactly through PostgreSQL's
jsonb and SQLite, and the hash chain covers it as stored: erasing the key later changes
no stored byte and no hash.

Reading replaces each sealed value with the plain value, or with ``ERASED`` once the
subject's key is gone. This module is pure: keys come in as bytes.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from continust.log.canonical import canonical_json

MARKER: Final = "$sealed"
FORMAT: Final = 1
ERASED: Final = "[erased]"
"""What every surface shows in place of a value whose subject was erased."""
KEY_BYTES: Final = 32
_FIELDS: Final = frozenset({MARKER, "subject", "nonce", "ciphertext"})


def is_sealed(value: Any) -> bool:
    """Tell whether ``value`` is a sealed value (exactly the four members, format 1)."""
    return (
        isinstance(value, dict)
        and value.keys() == _FIELDS
        and value[MARKER] == FORMAT
        and isinstance(value["subject"], str)
        and isinstance(value["nonce"], str)
        and isinstance(value["ciphertext"], str)
    )


def new_key() -> bytes:
    """Return a fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _associated(project: int, subject: str) -> bytes:
    return f"continust/sealed/1\x00{project}\x00{subject}".encode()


def seal(value: Any, *, key: bytes, project: int, subject: str) -> dict[str, Any]:
    """Return ``value`` sealed with the subject's key."""
    nonce = os.urandom(12)
    data = canonical_json(value).encode("utf-8")
    ciphertext = AESGCM(key).encrypt(nonce, data, _associated(project, subject))
    return {
        MARKER: FORMAT,
        "subject": subject,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
    }


class Unreadable(ValueError):
    """A sealed value that its key does not open (altered, or sealed elsewhere)."""


def unseal(sealed: dict[str, Any], *, key: bytes, project: int) -> Any:
    """Return the plain value of a sealed value; ``Unreadable`` if the key does not open it."""
    try:
        nonce = base64.b64decode(sealed["nonce"], validate=True)
        ciphertext = base64.b64decode(sealed["ciphertext"], validate=True)
        data = AESGCM(key).decrypt(nonce, ciphertext, _associated(project, sealed["subject"]))
        return json.loads(data.decode("utf-8"))
    except (InvalidTag, ValueError) as err:
        raise Unreadable(f"a sealed value of subject {sealed['subject']!r} does not open") from err


def wrap_key(key: bytes, master: bytes) -> bytes:
    """Return a subject key sealed by the master key: nonce then ciphertext."""
    nonce = os.urandom(12)
    return nonce + AESGCM(master).encrypt(nonce, key, b"continust/subject-key/1")


def unwrap_key(wrapped: bytes, master: bytes) -> bytes:
    """Return the subject key a master key wrapped; ``Unreadable`` with a wrong master key."""
    try:
        return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], b"continust/subject-key/1")
    except (InvalidTag, ValueError) as err:
        raise Unreadable("the master key does not open a subject key") from err


def sealed_values(document: Any) -> Iterator[dict[str, Any]]:
    """Yield every sealed value in a document, depth first."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if is_sealed(value):
                yield value
            else:
                stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def subjects_in(document: Any) -> set[str]:
    """Return the subjects whose sealed values a document holds."""
    return {sealed["subject"] for sealed in sealed_values(document)}


def replace_sealed(document: Any, opened: Callable[[dict[str, Any]], Any]) -> Any:
    """Return ``document`` with each sealed value replaced by ``opened(value)``; parts
    without one are shared, not copied."""
    if isinstance(document, dict):
        if is_sealed(document):
            return opened(document)
        changed = {}
        for name, item in document.items():
            new = replace_sealed(item, opened)
            if new is not item:
                changed[name] = new
        return {**document, **changed} if changed else document
    if isinstance(document, list):
        items = [replace_sealed(item, opened) for item in document]
        if any(new is not old for new, old in zip(items, document, strict=True)):
            return items
        return document
    return document

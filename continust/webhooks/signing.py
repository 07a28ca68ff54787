"""Secrets and signatures, as the Standard Webhooks convention has them.

A secret is ``whsec_`` and the base64 of a random key. Each attempt is sent with

    webhook-id: <the delivery's id, the same on every retry>
    webhook-timestamp: <seconds since the epoch, when the attempt was made>
    webhook-signature: v1,<base64 of HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>

A receiver recomputes the signature over the raw body with its copy of the secret,
compares in constant time, and refuses timestamps too far from its clock (replays).
``verify`` is that receiver, standing alone (no Django): copy it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

PREFIX = "whsec_"
KEY_BYTES = 32
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
TOLERANCE_SECONDS = 300


class InvalidSecret(ValueError):
    """A secret that is not ``whsec_`` and the base64 of 24 to 64 bytes."""


class BadSignature(ValueError):
    """A request whose signature or timestamp does not check out."""


def new_secret() -> str:
    """A fresh random secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The key a secret holds; InvalidSecret says what is wrong with it."""
    if not secret.startswith(PREFIX):
        raise InvalidSecret(f"a secret starts with {PREFIX}")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidSecret(f"a secret is {PREFIX} and base64: {err}") from err
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret(
            f"a secret's key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The signing headers of one attempt made now."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    received: dict[str, str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """What a receiver does: raise BadSignature unless the headers sign ``body`` with
    ``secret`` and the timestamp is within ``tolerance`` seconds of now."""
    lower = {k.lower(): v for k, v in received.items()}
    try:
        message_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        offered = lower["webhook-signature"].split()
    except (KeyError, ValueError) as err:
        raise BadSignature(f"missing or malformed header: {err}") from err
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise BadSignature("the timestamp is too old or too new")
    expected = signature(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, each) for each in offered):
        raise BadSignature("no signature matches")

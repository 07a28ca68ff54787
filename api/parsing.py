"""Strict JSON request bodies: what the log can store, or a 400 before anything else runs.

Python's ``json`` accepts ``NaN``, ``Infinity`` and numbers that overflow to
infinity, and strings with NUL or lone surrogates; none of them can be hashed
canonically or stored in PostgreSQL, so the API refuses them as malformed.

A whole number written with a fraction or an exponent (``1e20``) is read as the
integer it is: PostgreSQL's jsonb gives ``1e20`` back as ``100000000000000000000``,
which Python reads as an int, so a float would no longer hash as it was hashed
when appended, and ``verify`` would report a broken chain.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any, cast

from django.http import HttpRequest
from ninja.parser import Parser
from ninja.types import DictStrAny

from continust.core.errors import InvalidName
from continust.core.parsing import storable_text

# Only these escapes make a NUL or a lone surrogate (raw ones are invalid JSON or UTF-8).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class MalformedJSON(ValueError):
    """A body that is not JSON the log can store."""


def _refuse_constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not JSON")


def _number(text: str) -> float | int:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedJSON(f"the number {text[:40]} is too large")
    if number.is_integer() and abs(number) >= 1e16:  # where repr() turns to exponents
        return int(Decimal(text))
    return number


def _check_text(text: str) -> None:
    try:
        storable_text(text, "a string")
    except InvalidName as err:
        raise MalformedJSON(str(err)) from err


def check_strings(document: Any) -> None:
    """Refuse strings, keys included, that cannot be stored; walk without recursion."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def loads_strict(body: bytes) -> Any:
    """Parse a request body as JSON the log can store."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedJSON("the body is not UTF-8") from err
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_number)
    except RecursionError as err:
        raise MalformedJSON("the document is nested too deeply") from err
    if _SUSPECT_ESCAPE.search(body):
        check_strings(document)
    return document


class StrictJSONParser(Parser):
    """ninja's parser, refusing what the log cannot store."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        return cast(DictStrAny, loads_strict(request.body))

"""Upcasters: what turns a payload of one version of an event type into the next.

A version from 2 on names one: a declarative RFC 6902 JSON Patch, stored with the
version, or a Python function ``(payload) -> payload`` registered here by its dotted path
with the ``upcaster`` decorator (its module is imported by ``CONTINUST_UPCASTER_MODULES``,
or by whatever imports it first). An upcaster never changes what is stored: it runs when
an event is read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

import jsonpatch
from django.conf import settings

from continust.core.errors import InvalidEvent

Upcast = Callable[[dict[str, Any]], dict[str, Any]]
F = TypeVar("F", bound=Upcast)

_registered: dict[str, Upcast] = {}


class UpcastFailed(InvalidEvent):
    """An upcaster that raised, or answered something that is not a JSON object."""


def upcaster(function: F) -> F:
    """Register a function as an upcaster under its dotted path (``module.name``)."""
    _registered[f"{function.__module__}.{function.__qualname__}"] = function
    return function


def registered_function(path: str) -> Upcast:
    """Return the upcaster registered as ``path``; InvalidEvent when there is none."""
    if path not in _registered:
        for module in settings.CONTINUST_UPCASTER_MODULES:
            import_module(module)
    try:
        return _registered[path]
    except KeyError:
        raise InvalidEvent(
            f"no upcaster is registered as {path[:300]!r}: decorate the function with "
            "continust.schemas.upcasters.upcaster and list its module in "
            "CONTINUST_UPCASTER_MODULES"
        ) from None


def checked_patch(operations: Any) -> jsonpatch.JsonPatch:
    """Return RFC 6902 operations as a patch; InvalidEvent when they are not well formed."""
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise InvalidEvent("an upcaster patch is a list of RFC 6902 operations")
    try:
        # The constructor parses every operation: an unknown op or a malformed path fails.
        return jsonpatch.JsonPatch(operations)
    except Exception as err:  # jsonpatch's and jsonpointer's errors alike
        raise InvalidEvent(f"the upcaster patch is not valid: {err}") from err


def apply(
    payload: dict[str, Any],
    *,
    patch: list[dict[str, Any]] | None,
    function: str,
    label: str,
) -> dict[str, Any]:
    """Upcast one payload by one step; ``label`` names the step in errors."""
    try:
        if patch is not None:
            result = jsonpatch.apply_patch(payload, patch, in_place=False)
        else:
            result = registered_function(function)(copy.deepcopy(payload))
    except InvalidEvent:
        raise
    except Exception as err:
        raise UpcastFailed(f"upcasting to {label} failed: {err}") from err
    if not isinstance(result, dict):
        raise UpcastFailed(f"upcasting to {label} answered {type(result).__name__}, not an object")
    return result

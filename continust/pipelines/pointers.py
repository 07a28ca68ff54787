"""JSON Pointers (RFC 6901) as user-defined pipelines read them: parsed once, resolved often.

Pure Python: neither Django nor Celery. A pointer that leads nowhere resolves to
``MISSING`` (not an error): a filter tests for it, a map writes ``null``.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["MISSING", "Pointer", "POINTER_PATTERN"]

# "" (the whole document) or "/" followed by tokens in which "~" is "~0" or "~1".
POINTER_PATTERN: Final = r"^(/([^~/]|~[01])*)*$"
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


class _Missing:
    """The value of a pointer that leads nowhere."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class Pointer:
    """A parsed JSON Pointer; ``resolve(document)`` returns the value or ``MISSING``."""

    __slots__ = ("text", "tokens")

    def __init__(self, text: str) -> None:
        if not re.match(POINTER_PATTERN, text):
            raise ValueError(f"{text!r} is not a JSON Pointer (it starts with / and ~ is ~0 or ~1)")
        self.text = text
        self.tokens = tuple(
            part.replace("~1", "/").replace("~0", "~") for part in text.split("/")[1:]
        )

    def __repr__(self) -> str:
        return f"Pointer({self.text!r})"

    @property
    def first(self) -> str | None:
        """The first token (the top-level field the pointer reads), if any."""
        return self.tokens[0] if self.tokens else None

    def resolve(self, document: Any) -> Any:
        value = document
        for token in self.tokens:
            if isinstance(value, dict):
                if token not in value:
                    return MISSING
                value = value[token]
            elif isinstance(value, list | tuple):
                if not _INDEX.match(token) or int(token) >= len(value):
                    return MISSING
                value = value[int(token)]
            else:
                return MISSING
        return value

"""Render a JSON document as a collapsible tree of <details> elements, every value escaped."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from continust.documents.diff import MISSING

MAX_NODES = 3000


def _scalar(value: Any) -> str:
    kind = "null" if value is None else type(value).__name__
    return f'<span class="j-{escape(kind)}">{escape(json.dumps(value, ensure_ascii=False))}</span>'


def json_tree(value: Any, *, open_depth: int = 2) -> SafeString:
    """Return the document as nested <details>; past MAX_NODES nodes the rest is elided."""
    budget = [MAX_NODES]
    parts: list[str] = []

    def walk(node: Any, label: str | None, depth: int) -> None:
        budget[0] -= 1
        key = f'<span class="j-key">{escape(label)}</span>: ' if label is not None else ""
        if budget[0] < 0:
            if budget[0] == -1:
                parts.append('<li class="j-more">… more (download the JSON)</li>')
            return
        if isinstance(node, dict | list):
            items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            brackets = "{}" if isinstance(node, dict) else "[]"
            opened = " open" if depth < open_depth else ""
            parts.append(
                f"<li><details{opened}><summary>{key}{brackets[0]}"
                f'<span class="j-count">{len(items)}</span>{brackets[1]}</summary><ul>'
            )
            for child_key, child in items:
                walk(child, str(child_key), depth + 1)
            parts.append("</ul></details></li>")
        else:
            parts.append(f"<li>{key}{_scalar(node)}</li>")

    walk(value, None, 0)
    return mark_safe('<ul class="json-tree">' + "".join(parts) + "</ul>")


def json_text(value: Any) -> str:
    """A value as indented JSON text; nothing for a value that is missing (one side of an
    added or removed path)."""
    if value is MISSING:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)

"""Template helpers of the explorer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """Return ``?query`` with the current parameters, some changed (None drops one)."""
    request = context["request"]
    params = {
        k: v for k, v in request.GET.items() if k not in changes and k not in {"fragment", "day"}
    }
    params.update({k: v for k, v in changes.items() if v not in (None, "")})
    return "?" + urlencode(params)

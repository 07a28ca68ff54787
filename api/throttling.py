"""Per-token rate limiting: django-ninja's throttle, keyed by the token that authenticated.

``CONTINUST_API_RATE`` (``N/s``, ``N/min``, ``N/h`` or ``N/day``; ``0`` or ``off``: no
limit) is read at each request, so a changed setting applies without a new API. Each
web process counts in its own cache (``api-rate``): with several gunicorn workers a
token may make that many requests to each. A refused request answers 429
``rate_limited`` with ``Retry-After``, before the operation reads or writes anything.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """At most ``CONTINUST_API_RATE`` requests per API token; other tokens count apart."""

    scope = "token"
    cache_format = "continust_api_rate_%(ident)s"

    def __init__(self) -> None:  # the rate is read per request, not once
        self.rate = None
        self.num_requests, self.duration = None, None

    @property  # type: ignore[override,unused-ignore]
    def cache(self) -> BaseCache:  # type: ignore[override]
        return caches["api-rate"]

    def allow_request(self, request: HttpRequest) -> bool:
        rate: str | None = settings.CONTINUST_API_RATE
        if rate is None:
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        token: Any = getattr(request, "auth", None)
        if token is None:  # refused as 401 before; nothing to count
            return None
        # The prefix is random and unique per token: no two tokens, even of two test
        # databases, share a count.
        return self.cache_format % {"ident": token.prefix}

"""The Content-Security-Policy header, built once per policy instead of once per response.

django-csp's middleware builds the header from ``CONTENT_SECURITY_POLICY`` (and its
report-only twin) on every response, although the settings do not change while the
process runs. This middleware is django-csp's, with the same settings and the same
rules (exempt responses, excluded path prefixes, a header already set, DEBUG's error
pages); only the header of a response nothing customised is built once, by django-csp's
own ``build_policy``, and reused. A response a view changed (``csp_update``,
``csp_replace``, ``csp_exempt`` and the like set attributes on it) or a request that
used its nonce goes through django-csp unchanged. Changing the settings (a test's
``override_settings``) builds the header again.
"""

from __future__ import annotations

import http.client
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# What a view's decorators set on a response to change its policy.
_CUSTOMISED = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_SETTINGS = ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY")
_DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)

# (header, the response attribute that exempts it, its policy text, excluded path prefixes)
_built: list[tuple[str, str, str, tuple[str, ...]]] | None = None


def _policies() -> list[tuple[str, str, str, tuple[str, ...]]]:
    global _built
    if _built is None:
        built = []
        for header, exempt, setting, report_only in (
            (HEADER, "_csp_exempt", "CONTENT_SECURITY_POLICY", False),
            (HEADER_REPORT_ONLY, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
        ):
            text = build_policy(report_only=report_only)
            if text:
                policy = getattr(settings, setting, None) or {}
                prefixes = tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ())
                built.append((header, exempt, text, prefixes))
        _built = built
    return _built


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _built
    if setting in _SETTINGS:
        _built = None


setting_changed.connect(_forget)


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp's middleware, with the header of an unchanged policy built once."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _CUSTOMISED
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        for header, exempt, text, prefixes in _policies():
            if (
                getattr(response, exempt, False) is False
                and header not in response
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = text
        # As django-csp does: a nonce asked for after the header was written cannot be in it.
        request.csp_nonce = CheckableLazyObject(  # type: ignore[attr-defined]
            self._csp_nonce_post_response
        )
        return response

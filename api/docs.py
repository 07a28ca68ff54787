"""The browsable API docs: Swagger UI from the copy django-ninja ships, never from a CDN.

django-ninja renders its docs page with assets from a CDN unless ``ninja`` is an
installed app whose static files are collected and served. The API serves the
few files the page needs itself, straight from the installed package, so the
docs work offline and under gunicorn without any static file setup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ninja
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from api.errors import not_found

ASSET_DIR = Path(ninja.__file__).parent / "static" / "ninja"
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-init.js": "text/javascript",
    "favicon.png": "image/png",
}


class LocalSwagger(Swagger):
    """Swagger UI whose scripts and styles come from this server."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs), "validatorUrl": None}
        return render(
            request,
            "api/docs.html",
            {
                "title": api.title,
                "swagger_settings": settings,
                "assets": {
                    name.replace("-", "_").replace(".", "_"): reverse("api-docs-asset", args=[name])
                    for name in ASSETS
                },
            },
        )


@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponseBase:
    """Serve one of the docs page's files from the installed django-ninja."""
    if name not in ASSETS:
        return not_found(request)
    response = FileResponse((ASSET_DIR / name).open("rb"), content_type=ASSETS[name])
    response["Cache-Control"] = "public, max-age=86400"
    return response

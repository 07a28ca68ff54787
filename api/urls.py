"""The Tokens pages' URLs, mounted under ``tokens/``."""

from __future__ import annotations

from django.urls import path

from api import views

urlpatterns = [
    path("", views.tokens, name="api-tokens"),
    path("<int:token_id>/revoke/", views.revoke, name="api-token-revoke"),
]

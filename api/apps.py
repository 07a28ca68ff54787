"""The API app: the token model, its pages and the django-ninja endpoints."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "HTTP API"
    default_auto_field = "django.db.models.BigAutoField"

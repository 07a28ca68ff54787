"""The continust app: the domain's models, commands and tasks."""

from __future__ import annotations

from django.apps import AppConfig


class ContinustConfig(AppConfig):
    name = "continust"
    verbose_name = "continust"

    def ready(self) -> None:
        # Connects the projections' receiver of erasures.
        import continust.projections.control  # noqa: F401

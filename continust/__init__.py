"""continust: event-sourced, versioned state with a branching version graph."""

from __future__ import annotations

from continust.celery import app as celery_app

__all__ = ["celery_app"]

"""The Celery application; tasks live beside the domain code they run."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")

app = Celery("continust")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""The Celery application; tasks live beside the domain code they run.

Workers start with ``celery -A continust.celery worker``. Nothing imports this
module on the way to another (``continust/__init__.py`` is empty): the task
modules and the outbox's sender import it themselves, so the pure modules load
without Celery and without setting ``DJANGO_SETTINGS_MODULE``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")

app = Celery("continust")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.include = [
    "continust.pipeline_tasks",
    "continust.projection_tasks",
    "continust.webhooks.tasks",
    "continust.subscription_tasks",
]


@app.on_configure.connect
def _settings_or_exit(sender: Celery, **kwargs: object) -> None:
    """A bad setting stops the worker (and beat) with one line, not a traceback."""
    from continust.startup import settings_or_exit

    settings_or_exit()


@app.on_after_configure.connect
def _make_broker_folders(sender: Celery, **kwargs: object) -> None:
    """Create the embedded filesystem broker's folders; kombu expects them to exist."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)

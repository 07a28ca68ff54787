"""WSGI entry point for gunicorn: a bad setting stops it with one line, not a traceback."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from continust.startup import GUNICORN_APP_LOAD_ERROR, settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "continust.settings")
settings_or_exit(GUNICORN_APP_LOAD_ERROR)
application = get_wsgi_application()

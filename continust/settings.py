"""Django settings for continust, read only from the environment.

Every value has an embedded default (SQLite and kombu's filesystem broker under
``var/``; outside debug mode, a secret key generated once into ``var/secret_key``);
a malformed value stops the process with ``ImproperlyConfigured`` instead of being
guessed at (one line, see ``continust/startup.py``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from continust import secret_key
from continust.env import env_bool, env_int, env_list, env_networks, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CONTINUST_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-never-use-in-production"
    else:
        SECRET_KEY = secret_key.load_or_create(VAR_DIR)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "continust",
    "explorer",
    "api",
]

MIDDLEWARE = [
    # First, so it times and counts every response, errors included (GET /metrics).
    "api.metrics.RequestMetrics",
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collectstatic), compressed and cached forever by hash.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # django-csp's middleware, the header of an unchanged policy built once (continust/csp.py).
    "continust.csp.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A write that timed out on a database lock: 503 with Retry-After, not a 500.
    "continust.busy.DatabaseBusyMiddleware",
    "explorer.errors.DomainErrors",
    # Last, as django-axes asks: it turns a locked-out login into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "continust.urls"
WSGI_APPLICATION = "continust.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]


def _database() -> dict[str, object]:
    url = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'continust.sqlite3'}")
    try:
        config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=60))
    except ValueError as err:
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is not a database URL: {err}") from err
    engine = str(config["ENGINE"])
    if engine.endswith("sqlite3"):
        # Writers take the lock when the transaction starts, not at the first write, so
        # two appends never deadlock upgrading a shared lock; waiting beats failing.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
        config["CONN_MAX_AGE"] = 0
    elif not engine.endswith("postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL must be postgres:// or sqlite://, not {engine}")
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("CONTINUST_STATIC_ROOT", str(VAR_DIR / "static")))
# Outside debug mode the pages name hashed, compressed copies that `manage.py collectstatic`
# wrote to STATIC_ROOT (WhiteNoise serves them); in debug mode runserver serves the sources.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# -- security: production defaults; SecurityMiddleware sends them over HTTPS only ------------
# Pages read the CSRF token from the page (hx-headers), never from the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "explorer.errors.csrf_failure"  # a page inside the layout
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content security policy (django-csp): scripts and styles from this server only, so no
# inline <script>, on* handler or style attribute runs, wherever an injection lands.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Login rate limiting (django-axes): after CONTINUST_LOGIN_FAILURES failed logins for one
# username from one address, that pair is locked out for CONTINUST_LOGIN_COOLOFF_MINUTES
# (429); a success resets the count. Attempts are counted in the database, so every
# process and server shares them. The client address is REMOTE_ADDR unless
# CONTINUST_PROXY_COUNT says how many trusted proxies append to X-Forwarded-For.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("CONTINUST_LOGIN_RATE_LIMIT", True)
AXES_FAILURE_LIMIT = env_int("CONTINUST_LOGIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("CONTINUST_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
CONTINUST_PROXY_COUNT = env_int("CONTINUST_PROXY_COUNT", 0, minimum=0)
AXES_IPWARE_PROXY_COUNT = CONTINUST_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if CONTINUST_PROXY_COUNT else ["REMOTE_ADDR"]
)

# continust's own settings.
# Who may scrape /metrics (api/metrics.py): these addresses, or a bearer of this token.
# A request through a proxy counts by address only with CONTINUST_PROXY_COUNT set.
CONTINUST_METRICS_NETWORKS = env_networks("CONTINUST_METRICS_NETWORKS", ["127.0.0.1", "::1"])
CONTINUST_METRICS_TOKEN = env_str("CONTINUST_METRICS_TOKEN", "")
# Wraps every data subject's key (continust.log.subjects): 32 bytes, URL-safe base64.
# Unset: subject keys are stored as they are. Keys wrapped by it need it to be read.
CONTINUST_MASTER_KEY = env_str("CONTINUST_MASTER_KEY", "")
CONTINUST_MAX_PAYLOAD_BYTES = env_int("CONTINUST_MAX_PAYLOAD_BYTES", 1_048_576, minimum=2)
CONTINUST_MAX_BATCH_EVENTS = env_int("CONTINUST_MAX_BATCH_EVENTS", 10_000, minimum=1)
# Extra reducers: "name:version=dotted.path.to.function", comma separated.
CONTINUST_REDUCERS = env_list("CONTINUST_REDUCERS", [])
# Modules whose functions are registered as upcasters (continust.schemas.upcasters).
CONTINUST_UPCASTER_MODULES = env_list("CONTINUST_UPCASTER_MODULES", [])

# Celery: Redis (or any kombu URL) in production, the filesystem transport embedded.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("CONTINUST_TASK_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Replays (continust.replays): events folded per committed chunk, how long a worker's claim
# lasts without a commit, an optional pause after each chunk (tests use it to kill a worker
# mid-replay), and after how long a replay nobody claimed is sent to the broker again.
CONTINUST_REPLAY_CHUNK_EVENTS = env_int("CONTINUST_REPLAY_CHUNK_EVENTS", 5000, minimum=1)
CONTINUST_REPLAY_LEASE_SECONDS = env_int("CONTINUST_REPLAY_LEASE_SECONDS", 60, minimum=1)
CONTINUST_REPLAY_CHUNK_DELAY_MS = env_int("CONTINUST_REPLAY_CHUNK_DELAY_MS", 0, minimum=0)
CONTINUST_REPLAY_RESEND_SECONDS = env_int("CONTINUST_REPLAY_RESEND_SECONDS", 60, minimum=1)

# Compaction (continust.retention.compaction): versions per chunk transaction, how long a worker's
# claim lasts without progress, when an unclaimed one is sent again, how often Celery
# beat asks for a compaction of each stream whose policy is not eternal, and an optional
# pause after each chunk (tests use it to kill a worker mid-compaction).
CONTINUST_COMPACTION_CHUNK = env_int("CONTINUST_COMPACTION_CHUNK", 5000, minimum=1)
CONTINUST_COMPACTION_LEASE_SECONDS = env_int("CONTINUST_COMPACTION_LEASE_SECONDS", 300, minimum=1)
CONTINUST_COMPACTION_RESEND_SECONDS = env_int("CONTINUST_COMPACTION_RESEND_SECONDS", 60, minimum=1)
CONTINUST_COMPACTION_INTERVAL_SECONDS = env_int(
    "CONTINUST_COMPACTION_INTERVAL_SECONDS", 3600, minimum=1
)
CONTINUST_COMPACTION_CHUNK_DELAY_MS = env_int("CONTINUST_COMPACTION_CHUNK_DELAY_MS", 0, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "compact-due-streams": {
        "task": "continust.compact_due",
        "schedule": float(min(CONTINUST_COMPACTION_INTERVAL_SECONDS, 3600)),
    },
}
# Recomputed states of selective streams (continust.log.states) are cached here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": env_int("CONTINUST_STATE_CACHE_ENTRIES", 2000, minimum=1)},
    },
}
# API requests per token (ninja's throttling, api/throttling.py), counted in this cache by
# each web process; CONTINUST_API_RATE=0 turns the limit off.
CONTINUST_API_RATE = env_rate("CONTINUST_API_RATE", "1200/min")
CACHES["api-rate"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "continust-api-rate",
    "OPTIONS": {"MAX_ENTRIES": 100_000},
}

# Webhooks (continust.webhooks): whether targets may be loopback, private, link-local or
# other non-public addresses (off: refused, against SSRF), the timeout of one POST, the
# attempts before a delivery is given up, the first retry's delay (doubling each time, up
# to the cap), and when a queued delivery nobody claimed is sent to the broker again.
CONTINUST_WEBHOOK_ALLOW_PRIVATE = env_bool("CONTINUST_WEBHOOK_ALLOW_PRIVATE", False)
CONTINUST_WEBHOOK_TIMEOUT_SECONDS = env_int("CONTINUST_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
CONTINUST_WEBHOOK_MAX_ATTEMPTS = env_int("CONTINUST_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
CONTINUST_WEBHOOK_BACKOFF_SECONDS = env_int("CONTINUST_WEBHOOK_BACKOFF_SECONDS", 10, minimum=1)
CONTINUST_WEBHOOK_BACKOFF_MAX_SECONDS = env_int(
    "CONTINUST_WEBHOOK_BACKOFF_MAX_SECONDS", 3600, minimum=1
)
CONTINUST_WEBHOOK_RESEND_SECONDS = env_int("CONTINUST_WEBHOOK_RESEND_SECONDS", 120, minimum=1)

# Subscriptions (continust.subscriptions): how long a catch-up subscriber's claim lasts
# without a checkpoint, events per checkpoint, and how long a worker's consumer of a
# persistent subscription runs before it hands over to a fresh task message.
CONTINUST_SUBSCRIPTION_LEASE_SECONDS = env_int(
    "CONTINUST_SUBSCRIPTION_LEASE_SECONDS", 30, minimum=1
)
CONTINUST_SUBSCRIPTION_BATCH = env_int("CONTINUST_SUBSCRIPTION_BATCH", 100, minimum=1)
CONTINUST_SUBSCRIPTION_TASK_SECONDS = env_int("CONTINUST_SUBSCRIPTION_TASK_SECONDS", 60, minimum=1)
# How often each worker's dispatcher sends the outbox and looks for stale replays.
CONTINUST_OUTBOX_INTERVAL_SECONDS = env_int("CONTINUST_OUTBOX_INTERVAL_SECONDS", 2, minimum=1)
# The live change feed (server-sent events, continust.read.feed): each response ends after
# CONTINUST_FEED_SECONDS (the browser reconnects with Last-Event-ID), sends a heartbeat
# comment after CONTINUST_FEED_HEARTBEAT_SECONDS without events, drops a client that has
# not taken a frame for CONTINUST_FEED_SLOW_SECONDS, and at most CONTINUST_FEED_MAX_OPEN
# feeds are open per API token (or explorer user); more answer 429.
CONTINUST_FEED_SECONDS = env_int("CONTINUST_FEED_SECONDS", 55, minimum=0)
CONTINUST_FEED_HEARTBEAT_SECONDS = env_int("CONTINUST_FEED_HEARTBEAT_SECONDS", 15, minimum=1)
CONTINUST_FEED_SLOW_SECONDS = env_int("CONTINUST_FEED_SLOW_SECONDS", 10, minimum=1)
CONTINUST_FEED_MAX_OPEN = env_int("CONTINUST_FEED_MAX_OPEN", 5, minimum=1)
# Feeds of one process reading the log at once (each read holds a database connection);
# all of a process's feeds share one listening connection (continust.read.wakeups).
CONTINUST_FEED_READERS = env_int("CONTINUST_FEED_READERS", 4, minimum=1)

# Projections (continust.projections): "name=dotted.path.Class", comma separated, beside
# the built-in event_counts; one worker at a time runs each under a lease.
CONTINUST_PROJECTIONS = env_list("CONTINUST_PROJECTIONS", [])
_projection_names = ["event_counts"]  # the built-in one
for _entry in CONTINUST_PROJECTIONS:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,19}=[A-Za-z_][\w.]*", _entry.replace(" ", "")):
        raise ImproperlyConfigured(
            f"CONTINUST_PROJECTIONS entry {_entry!r} is not name=dotted.path.Class (a name of"
            " lower-case letters, digits and underscores, at most 20, starting with a letter)"
        )
    _projection_names.append(_entry.partition("=")[0].strip())
    if _projection_names.count(_projection_names[-1]) > 1:
        raise ImproperlyConfigured(f"CONTINUST_PROJECTIONS names {_projection_names[-1]!r} twice")
CONTINUST_PROJECTION_LEASE_SECONDS = env_int("CONTINUST_PROJECTION_LEASE_SECONDS", 30, minimum=2)
CONTINUST_PROJECTION_RESEND_SECONDS = env_int("CONTINUST_PROJECTION_RESEND_SECONDS", 30, minimum=1)
CONTINUST_PROJECTION_SLICE_SECONDS = env_int("CONTINUST_PROJECTION_SLICE_SECONDS", 300, minimum=1)
# How long a worker that has caught up keeps following the log (woken by appends) before
# letting the projection go; 0: at once (the outbox sweep sends it again when it lags).
CONTINUST_PROJECTION_FOLLOW_SECONDS = env_int("CONTINUST_PROJECTION_FOLLOW_SECONDS", 0, minimum=0)
# A pause after each committed batch (tests use it to kill a worker mid-projection).
CONTINUST_PROJECTION_BATCH_DELAY_MS = env_int("CONTINUST_PROJECTION_BATCH_DELAY_MS", 0, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("CONTINUST_LOG_LEVEL", "WARNING")},
    # WeasyPrint (audit report PDFs) warns about every screen-only rule of the stylesheet.
    "loggers": {"weasyprint": {"level": "ERROR"}, "fontTools": {"level": "ERROR"}},
}

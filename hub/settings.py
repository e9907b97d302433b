"""Project settings, read from the environment.

No variables at all gives the *embedded default*: SQLite under ``var/`` and the in-memory
channel layer, one process.  ``DATABASE_URL=postgres://…`` switches to PostgreSQL and
``REDIS_URL=redis://…`` to the channels-redis pub/sub layer, which is how several daphne
processes share one hub (see docs/operations.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HUB_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def database_from_url(url: str | None) -> dict:
    """Translate ``DATABASE_URL`` into Django's DATABASES entry (SQLite when unset)."""
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("HUB_SQLITE_PATH", str(VAR_DIR / "hub.sqlite3")),
            # Persistent: reopening per call re-ran the PRAGMAs and checkpointed the WAL on
            # every close, which cost most of the CPU per message when measured.
            "CONN_MAX_AGE": None,
            # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy
            # timeout instead of failing half-way with "database is locked".
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                ),
            },
            "TEST": {"NAME": os.environ.get("HUB_SQLITE_TEST_PATH", ":memory:")},
        }
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (postgres://)")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Persistent connections: reconnecting per call halved throughput when measured.
        "CONN_MAX_AGE": _env_int("HUB_DB_CONN_MAX_AGE", 600),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def channel_layer_from_url(url: str | None) -> dict:
    """The channel layer: in-memory when ``REDIS_URL`` is unset, Redis pub/sub otherwise.

    The pub/sub layer was chosen by measurement (docs/architecture.md).  redis-py's default
    5 s socket timeout breaks the layer's blocking reads and its default pool fails a
    connect storm, so both are set explicitly.
    """
    if not url:
        return {"BACKEND": "hub.layers.EmbeddedChannelLayer", "CONFIG": {"capacity": 5000}}
    backend = os.environ.get("HUB_CHANNEL_LAYER", "pubsub")
    host = {
        "address": url,
        "socket_timeout": None,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "retry_on_timeout": True,
        "health_check_interval": 15,
        "max_connections": _env_int("HUB_REDIS_MAX_CONNECTIONS", 10_000),
    }
    if backend == "classic":
        return {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "capacity": _env_int("HUB_LAYER_CAPACITY", 5000)},
        }
    # The pub/sub layer, with subscriptions that survive a Redis restart (hub/layers.py).
    return {"BACKEND": "hub.layers.ResilientPubSubChannelLayer", "CONFIG": {"hosts": [host]}}


SECRET_KEY = os.environ.get("SECRET_KEY") or os.environ.get("HUB_SECRET_KEY") or ""
DEBUG = _env_bool("HUB_DEBUG", False)
if not SECRET_KEY:
    if os.environ.get("DATABASE_URL") and not _env_bool("HUB_ALLOW_INSECURE_KEY", False):
        raise RuntimeError("SECRET_KEY must be set when DATABASE_URL is set (production shape)")
    # Embedded default only: a per-checkout key kept under var/ so signed visitor
    # identities survive restarts of the demo without a secret in the repository.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("HUB_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("HUB_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "hub",
    "chat",
    "routing",
    "knowledge_base",
    "scheduling",
    "hsm",
    "backoffice_bridge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hub.auth.BearerTokenMiddleware",
    # External advisors: read-only while their access lasts, logged out when it ends.
    "hub.advisors.AdvisorGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hub.errors.HubErrorMiddleware",
]

ROOT_URLCONF = "hub.urls"
ASGI_APPLICATION = "hub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "hub" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hub.context_processors.hub_flags",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL"))}
CHANNEL_LAYERS = {"default": channel_layer_from_url(os.environ.get("REDIS_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# daphne serves static files itself unless a proxy in front does (docs/operations.md).
HUB_SERVE_STATIC = _env_bool("HUB_SERVE_STATIC", True)

# --- Hub behaviour -----------------------------------------------------------------------
HUB_DEMO = _env_bool("HUB_DEMO", False)
# Largest WebSocket frame the application accepts; larger frames get a `frame_too_large`
# error and the socket stays open.  daphne's own hard limit (Procfile) sits above it.
HUB_WS_MAX_FRAME_BYTES = _env_int("HUB_WS_MAX_FRAME_BYTES", 64 * 1024)
HUB_WS_RATE_PER_SECOND = _env_float("HUB_WS_RATE_PER_SECOND", 20.0)
HUB_WS_RATE_BURST = _env_int("HUB_WS_RATE_BURST", 40)
# How often an open console re-checks that its user is still active and logged in.
HUB_WS_REVALIDATE_SECONDS = _env_float("HUB_WS_REVALIDATE_SECONDS", 2.0)
# A console idle this long re-reads the event log, catching anything whose doorbell was lost.
HUB_CONSOLE_SAFETY_POLL_SECONDS = _env_float("HUB_CONSOLE_SAFETY_POLL_SECONDS", 5.0)
# How often each process records which operators have a console open (routing's away grace).
HUB_CONSOLE_SEEN_SECONDS = _env_float("HUB_CONSOLE_SEEN_SECONDS", 10.0)
# Replays longer than this are answered with a fresh snapshot instead.
HUB_CONSOLE_REPLAY_LIMIT = _env_int("HUB_CONSOLE_REPLAY_LIMIT", 10_000)
HUB_MESSAGE_MAX_CHARS = _env_int("HUB_MESSAGE_MAX_CHARS", 4096)
# External advisors (seed 003, docs/backoffice.md): an access code lets an advisor join for
# this many minutes, then a new one is generated; a temporary access lasts this many hours
# at most; wrong codes an advisor may enter per hour.
HUB_ADVISOR_CODE_MINUTES = _env_int("HUB_ADVISOR_CODE_MINUTES", 60)
HUB_ADVISOR_TEMPORARY_HOURS = _env_int("HUB_ADVISOR_TEMPORARY_HOURS", 8)
HUB_ADVISOR_JOIN_MAX_ATTEMPTS = _env_int("HUB_ADVISOR_JOIN_MAX_ATTEMPTS", 5)
HUB_WEBCHAT_ALLOWED_ORIGINS = [
    o.strip() for o in os.environ.get("HUB_WEBCHAT_ALLOWED_ORIGINS", "").split(",") if o.strip()
]
HUB_API_TOKEN_TTL_HOURS = _env_int("HUB_API_TOKEN_TTL_HOURS", 12)

# --- Channels (chat/channels, docs/channels.md) -------------------------------------------
# WhatsApp Cloud API.  Enabled only when the phone number id, access token, app secret and
# verify token are all set; there are no secret defaults.
WHATSAPP_API_BASE_URL = os.environ.get("WHATSAPP_API_BASE_URL", "https://graph.facebook.com")
WHATSAPP_API_VERSION = os.environ.get("WHATSAPP_API_VERSION", "v21.0")
WHATSAPP_PHONE_NUMBER_ID = os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "")
WHATSAPP_ACCESS_TOKEN = os.environ.get("WHATSAPP_ACCESS_TOKEN", "")
WHATSAPP_APP_SECRET = os.environ.get("WHATSAPP_APP_SECRET", "")
WHATSAPP_VERIFY_TOKEN = os.environ.get("WHATSAPP_VERIFY_TOKEN", "")
# One request's timeout, and how many attempts a send makes (5xx, 429, timeouts and
# connection errors are retried with exponential backoff from the base; other 4xx are not).
WHATSAPP_TIMEOUT_SECONDS = _env_float("WHATSAPP_TIMEOUT_SECONDS", 10.0)
WHATSAPP_SEND_ATTEMPTS = _env_int("WHATSAPP_SEND_ATTEMPTS", 3)
WHATSAPP_RETRY_BACKOFF_SECONDS = _env_float("WHATSAPP_RETRY_BACKOFF_SECONDS", 0.5)
# The outbox: a send that still failed temporarily is due again after this many seconds
# (doubling each time), and fails for good after this many dispatches.
HUB_OUTBOX_RETRY_SECONDS = _env_float("HUB_OUTBOX_RETRY_SECONDS", 15.0)
HUB_OUTBOX_MAX_ATTEMPTS = _env_int("HUB_OUTBOX_MAX_ATTEMPTS", 5)

# --- Back-office bridge (backoffice_bridge, docs/backoffice.md) ---------------------------
# The bank's back office; no secret defaults (unset: searches and actions answer 503).
BACKOFFICE_BASE_URL = os.environ.get("BACKOFFICE_BASE_URL", "")
BACKOFFICE_TOKEN = os.environ.get("BACKOFFICE_TOKEN", "")
# One attempt's timeout; attempts per call (5xx, timeouts and connection errors are retried
# with exponential backoff from the base, with the same idempotency key; 4xx never).
BACKOFFICE_TIMEOUT_SECONDS = _env_float("BACKOFFICE_TIMEOUT_SECONDS", 5.0)
BACKOFFICE_ATTEMPTS = _env_int("BACKOFFICE_ATTEMPTS", 3)
BACKOFFICE_BACKOFF_SECONDS = _env_float("BACKOFFICE_BACKOFF_SECONDS", 0.2)
# A request nobody decided within this time expires.
BACKOFFICE_REQUEST_TTL_MINUTES = _env_int("BACKOFFICE_REQUEST_TTL_MINUTES", 60)
# An execution older than this is presumed dead and taken again (same idempotency key);
# after this many executions that found the back office unavailable, the request fails.
BACKOFFICE_EXECUTE_LEASE_SECONDS = _env_int("BACKOFFICE_EXECUTE_LEASE_SECONDS", 300)
BACKOFFICE_EXECUTE_MAX_ATTEMPTS = _env_int("BACKOFFICE_EXECUTE_MAX_ATTEMPTS", 5)
# Where an approved request's call runs (backoffice_bridge/executor.py): "thread" — a
# bounded pool of this many threads per web process, with at most this many executions
# queued (beyond it, and when a process dies, the scheduler's tick takes them) — or "off"
# (only the scheduler's tick executes).
BACKOFFICE_EXECUTOR = os.environ.get("BACKOFFICE_EXECUTOR", "thread")
BACKOFFICE_EXECUTOR_THREADS = _env_int("BACKOFFICE_EXECUTOR_THREADS", 4)
BACKOFFICE_EXECUTOR_QUEUE = _env_int("BACKOFFICE_EXECUTOR_QUEUE", 100)
# Temporary transfer limits: how long they last, and the bank's maximum for each.
BACKOFFICE_TEMPORARY_LIMITS_HOURS = _env_int("BACKOFFICE_TEMPORARY_LIMITS_HOURS", 24)
BACKOFFICE_MAX_DAILY_TRANSFER = _env_int("BACKOFFICE_MAX_DAILY_TRANSFER", 50_000)
BACKOFFICE_MAX_SINGLE_TRANSFER = _env_int("BACKOFFICE_MAX_SINGLE_TRANSFER", 20_000)
# Cheque stops: the longest series (first to last) one request may stop.
BACKOFFICE_MAX_CHEQUE_SERIES = _env_int("BACKOFFICE_MAX_CHEQUE_SERIES", 50)
# Consent for on-behalf actions: its default and longest validity.
BACKOFFICE_CONSENT_DAYS = _env_int("BACKOFFICE_CONSENT_DAYS", 90)
BACKOFFICE_CONSENT_MAX_DAYS = _env_int("BACKOFFICE_CONSENT_MAX_DAYS", 365)
# Action types that wait for the customer's one-time confirmation in the chat (comma-
# separated codes, e.g. "temporary_limits,reset_password"; unset: each type's own default,
# none today), how long the code lives and how many wrong answers reject the request.
BACKOFFICE_CONFIRM_ACTION_TYPES = (
    [
        code.strip()
        for code in os.environ["BACKOFFICE_CONFIRM_ACTION_TYPES"].split(",")
        if code.strip()
    ]
    if "BACKOFFICE_CONFIRM_ACTION_TYPES" in os.environ
    else None
)
BACKOFFICE_CONFIRM_MINUTES = _env_int("BACKOFFICE_CONFIRM_MINUTES", 10)
BACKOFFICE_CONFIRM_MAX_ATTEMPTS = _env_int("BACKOFFICE_CONFIRM_MAX_ATTEMPTS", 3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HUB_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

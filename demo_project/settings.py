"""Django settings: twelve-factor, read from the environment.

``DATABASE_URL`` selects the PostgreSQL server (14 or newer). Unset, the
project uses the embedded server of :mod:`reporting.embedded_db`, started on
the first connection. ``REPORTING_*`` settings are read through the small
accessor functions in :mod:`reporting.conf`, so tests can override them.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# DJANGO_ENV: "development" (the default: demo, tests, make serve) or "production".
# Production refuses to start without its own secret key and turns on secure
# cookies, HTTPS redirects and HSTS (see docs/operations.md).
ENVIRONMENT = os.environ.get("DJANGO_ENV", "development")
if ENVIRONMENT not in ("development", "production"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be development or production, not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"
_LOCAL_KEY = "insecure-local-only-key-change-me"


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    if value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {value!r}")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    if not value.isascii() or not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds, not {value!r}")
    return int(value)


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = _env_flag("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production")
    if not SECRET_KEY or SECRET_KEY == _LOCAL_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs DJANGO_SECRET_KEY: 50 or more random characters of its own, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
elif not SECRET_KEY:
    SECRET_KEY = _LOCAL_KEY  # only ever in development: demo, tests, make serve on 127.0.0.1
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# HTTPS. Behind a proxy that terminates TLS, DJANGO_PROXY_SSL_HEADER=1 trusts its
# X-Forwarded-Proto (only set it when the proxy overwrites that header).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_flag("DJANGO_SECURE_COOKIES", PRODUCTION)
SECURE_SSL_REDIRECT = _env_flag("DJANGO_SSL_REDIRECT", PRODUCTION)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = _env_int("DJANGO_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = _env_flag("DJANGO_HSTS_PRELOAD", False)
if _env_flag("DJANGO_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = _env_flag("DJANGO_USE_X_FORWARDED_HOST", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_pgviews",
    "reporting",
    "scheduler",
    # The example shop the demo, the tests and the benchmark report on.
    "examples.shop",
    # A second shape the tests declare: integer states with labels, tickets rather than orders.
    "examples.desk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's styles) from the web server itself, after collectstatic.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    _default_db = dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True)
else:
    _default_db = {
        "ENGINE": "reporting.embedded_db",
        "NAME": os.environ.get("REPORTING_EMBEDDED_DB_NAME", "reporting"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
DATABASES = {"default": _default_db}
# Behind PgBouncer in transaction mode (Django's switch for it; see
# docs/deployment.md): no server-side cursors, prepared statements or session settings that
# outlive a transaction. The scheduler refuses such a connection: give it a direct one.
_default_db["DISABLE_SERVER_SIDE_CURSORS"] = _env_flag("DATABASE_DISABLE_SERVER_SIDE_CURSORS", False)

# Reporting reads from a streaming read replica (reporting/routers.py).
if os.environ.get("REPORTING_DATABASE_URL"):
    DATABASES["reporting"] = dj_database_url.parse(
        os.environ["REPORTING_DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
    # In tests the replica alias reads the primary's test database.
    DATABASES["reporting"]["TEST"] = {"MIRROR": "default"}
    DATABASES["reporting"]["DISABLE_SERVER_SIDE_CURSORS"] = _env_flag(
        "REPORTING_DATABASE_DISABLE_SERVER_SIDE_CURSORS", False
    )
DATABASE_ROUTERS = ["reporting.routers.ReportingRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed, but without a manifest: a page never fails for a file not collected yet.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "reporting": {"level": os.environ.get("REPORTING_LOG_LEVEL", "INFO"), "propagate": True},
        "scheduler": {"level": os.environ.get("REPORTING_LOG_LEVEL", "INFO"), "propagate": True},
    },
}

# pgviews-redux: when a view's SQL changed, drop and recreate it on migrate
# (see docs/changing-views.md for how a new version is rolled out).
MATERIALIZED_VIEWS_CHECK_SQL_CHANGED = True

# The REPORTING_* settings, from the environment; reporting/conf.py reads and
# validates them when they are used, with their defaults.
for _name in (
    "REPORTING_DEFAULT_STRATEGY",
    "REPORTING_DASHBOARD_DAYS",
    "REPORTING_REFRESH_INTERVAL",
    "REPORTING_REFRESH_CRON",
    "REPORTING_FOLD_INTERVAL",
    "REPORTING_COMPACT_OVERLAY_ORDERS",
    "REPORTING_REFRESH_JITTER",
    "REPORTING_REFRESH_STATEMENT_TIMEOUT",
    "REPORTING_REFRESH_LOCK_TIMEOUT",
    "REPORTING_REFRESH_LOG_RETENTION_DAYS",
    "REPORTING_SHUTDOWN_GRACE",
    "REPORTING_SCHEMA",
    "REPORTING_SCHEMA_TAKE_OVER",
    "REPORTING_BI_GROUP",
    "REPORTING_BI_WATCHDOG_INTERVAL",
    "REPORTING_BI_LOCKOUT_TERMINATIONS",
    "REPORTING_BI_LOCKOUT_WINDOW",
    "REPORTING_AUDIT_INTERVAL",
    "REPORTING_AUDIT_SAMPLE",
    "REPORTING_WEB_STATEMENT_TIMEOUT",
    "REPORTING_WEB_LIVE_FOR_ALL",
    "REPORTING_PREPARED_READS",
    "REPORTING_CSV_EXPORTS_PER_HOUR",
    "REPORTING_READY_MAX_AGE",
    "REPORTING_STUCK_PENDING_HOURS",
    "REPORTING_SCHEDULER_METRICS_PORT",
    "REPORTING_SCHEDULER_METRICS_ADDR",
):
    if _name in os.environ:
        globals()[_name] = os.environ[_name]

# Where the history lives (docs/architecture.md, "Declaring your history"): here
# the example shop's orders and their status rows.
REPORTING_SOURCE = {
    "history": "shop.OrderStatus",
    "key": "order_id",
    "latest_by": ["-created", "-id"],
    "status": "status",
    "statuses": ["pending", "complete", "cancelled"],
    "parent": "shop.Order",
    "parent_key": "id",
    "parent_created": "created",
}

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

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
# Only for local use (demo, tests); set DJANGO_SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-local-only-key-change-me")
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reporting.urls"
WSGI_APPLICATION = "reporting.wsgi.application"

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

# Reporting reads from a streaming read replica (reporting/routers.py).
if os.environ.get("REPORTING_DATABASE_URL"):
    DATABASES["reporting"] = dj_database_url.parse(
        os.environ["REPORTING_DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
    # In tests the replica alias reads the primary's test database.
    DATABASES["reporting"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["reporting.routers.ReportingRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

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
# (see "Changing a view" in the README for how a new version is rolled out).
MATERIALIZED_VIEWS_CHECK_SQL_CHANGED = True

# The REPORTING_* settings, from the environment; reporting/conf.py reads and
# validates them when they are used, with their defaults.
for _name in (
    "REPORTING_DEFAULT_STRATEGY",
    "REPORTING_DASHBOARD_DAYS",
    "REPORTING_REFRESH_INTERVAL",
    "REPORTING_REFRESH_CRON",
    "REPORTING_REFRESH_JITTER",
    "REPORTING_REFRESH_STATEMENT_TIMEOUT",
    "REPORTING_REFRESH_LOCK_TIMEOUT",
    "REPORTING_REFRESH_LOG_RETENTION_DAYS",
    "REPORTING_SHUTDOWN_GRACE",
    "REPORTING_SCHEMA",
    "REPORTING_SCHEMA_TAKE_OVER",
    "REPORTING_BI_GROUP",
    "REPORTING_BI_WATCHDOG_INTERVAL",
    "REPORTING_WEB_STATEMENT_TIMEOUT",
    "REPORTING_WEB_LIVE_FOR_ALL",
    "REPORTING_CSV_EXPORTS_PER_HOUR",
    "REPORTING_READY_MAX_AGE",
):
    if _name in os.environ:
        globals()[_name] = os.environ[_name]

"""Settings for djjobs' own test suite. The database comes from DATABASE_URL (SQLite by default)."""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

SECRET_KEY = "djjobs-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

# Each concurrent test run needs its own test database, or runs wipe each other's (the
# Makefile gives every VENV its own): DJJOBS_TEST_SQLITE is the SQLite file, DJJOBS_TEST_PG_NAME
# the PostgreSQL test database (default test_<NAME>, as pytest-django, so test_djjobs),
# DJJOBS_TEST_MYSQL_NAME the MariaDB/MySQL one (same default).
_sqlite_file = Path(os.environ.get("DJJOBS_TEST_SQLITE") or BASE_DIR.parent / ".test-db" / "djjobs-test.sqlite3")
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{_sqlite_file}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that real worker processes share the test database.
    _db.setdefault("TEST", {})["NAME"] = str(_sqlite_file)
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _sqlite_file.parent.mkdir(parents=True, exist_ok=True)
elif "postgresql" in _db["ENGINE"]:
    _db.setdefault("TEST", {})["NAME"] = os.environ.get("DJJOBS_TEST_PG_NAME") or f"test_{_db['NAME']}"
elif "mysql" in _db["ENGINE"]:
    # What djjobs requires of MariaDB/MySQL (checks djjobs.W003, W004): utf8mb4, READ COMMITTED.
    _db.setdefault("TEST", {}).update(
        NAME=os.environ.get("DJJOBS_TEST_MYSQL_NAME") or f"test_{_db['NAME']}",
        CHARSET="utf8mb4",
        COLLATION="utf8mb4_unicode_ci",
    )
    _db.setdefault("OPTIONS", {}).update(charset="utf8mb4", isolation_level="read committed")
# Worker processes started by acceptance tests connect straight to the test database.
if os.environ.get("DJJOBS_TEST_DB_NAME"):
    _db["NAME"] = os.environ["DJJOBS_TEST_DB_NAME"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djjobs",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

TASKS = {
    "default": {
        "BACKEND": "djjobs.backend.JobsBackend",
        "QUEUES": ["default", "emails", "urgent", "other"],
    }
}
DJJOBS = {
    "RETRY_BACKOFF": 0.0,  # retries are due at once, so a --burst run sees every attempt
    "POLL_INTERVAL": 0.2,
}
# DJJOBS_TEST_FAST_PATHS=0: the whole suite on public APIs only (djjobs.db.fast); CI runs it once so.
if os.environ.get("DJJOBS_TEST_FAST_PATHS") == "0":
    DJJOBS["FAST_PATHS"] = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"djjobs": {"handlers": ["console"], "level": "WARNING"}},
}

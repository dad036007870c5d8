"""Settings of the djjobs demo shop. Not for production: see SECRET_KEY and DEBUG."""

from pathlib import Path

import environ

PROJECT_DIR = Path(__file__).resolve().parent
BASE_DIR = PROJECT_DIR.parent

env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-djjobs-demo-only")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djjobs",
    "demo_project.shop",
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

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"
ASGI_APPLICATION = "demo_project.asgi.application"

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
            ]
        },
    }
]

# SQLite by default; DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/djjobs_demo) overrides.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{PROJECT_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the workers write to the same file: wait for locks, and let
    # readers go on while a writer works.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "admin:login"

TASKS = {
    "default": {
        "BACKEND": "djjobs.backend.JobsBackend",
        "QUEUES": ["default", "emails", "reports"],
    }
}

DJJOBS = {
    "POLL_INTERVAL": 0.5,  # pick new jobs up quickly: this is a demo
    "CONCURRENCY": 4,
    # Schedules declared in code are written to the database by migrate (see the admin's
    # Schedules). The every-minute clean-up is declared on its task (shop/tasks.py), and
    # demo_setup adds a one-off reminder two minutes ahead.
    "SCHEDULES": {
        "nightly-report": {
            "task": "demo_project.shop.tasks.build_report",
            "cron": "0 2 * * *",
            "time_zone": "Europe/London",
            "kwargs": {"days": 1},
            "overlap": "skip",
            "description": "Yesterday's orders and revenue, every night at 02:00 London time.",
        },
    },
}

# Receipts are printed by the workers' console instead of being sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "shop@example.com"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"simple": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "simple"}},
    "loggers": {
        "djjobs": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "demo_project": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

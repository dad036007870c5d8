"""A tiny Django settings module for the djjobs benchmarks.

The database comes from DATABASE_URL (default: the local PostgreSQL database ``djjobs_bench``;
``benchmarks/run.py`` creates it and runs ``migrate``). Worker processes started by the benchmark
import this module too, so it has no side effects.

BENCH_POLL_INTERVAL / BENCH_CONCURRENCY override DJJOBS' POLL_INTERVAL / CONCURRENCY; left unset,
djjobs' own defaults apply (what a user gets out of the box).
"""

import os

import environ

env = environ.Env()

SECRET_KEY = "djjobs-bench-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/djjobs_bench"
DATABASES = {"default": env.db("DATABASE_URL", default=DEFAULT_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

elif "mysql" in DATABASES["default"]["ENGINE"]:
    # What djjobs requires of MariaDB/MySQL (checks djjobs.W003, W004): utf8mb4, READ COMMITTED.
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4", "isolation_level": "read committed"}

INSTALLED_APPS = ["djjobs"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {"default": {"BACKEND": "djjobs.backend.JobsBackend"}}

DJJOBS = {}
if os.environ.get("BENCH_POLL_INTERVAL"):
    DJJOBS["POLL_INTERVAL"] = float(os.environ["BENCH_POLL_INTERVAL"])
if os.environ.get("BENCH_CONCURRENCY"):
    DJJOBS["CONCURRENCY"] = int(os.environ["BENCH_CONCURRENCY"])

# No LOGGING for djjobs: run_workers then logs as it does out of the box (its own batching
# stderr handler at the -v level), which is what the benchmark measures.

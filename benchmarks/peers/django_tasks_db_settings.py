"""Django settings of the django-tasks-db peer (peers' virtualenv only).

The database is BENCH_PEER_DB_URL (postgres://, or mysql:// for benchmarks/peers/dtdb_mariadb.py).
CONN_MAX_AGE is BENCH_DTDB_CONN_MAX_AGE (default 600 s): with
Django's own default of 0, ``db_worker`` (which calls close_old_connections() around every task)
reconnects for every job, so the best settings keep the connection.
"""

import os
from urllib.parse import unquote, urlsplit

_url = urlsplit(os.environ.get("BENCH_PEER_DB_URL", "postgres://postgres@127.0.0.1:5432/djjobs_bench_django_tasks_db"))

SECRET_KEY = "djjobs-bench-peer-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory (and make db_worker --reload)
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django_tasks_db"]
_mysql = _url.scheme in ("mysql", "mariadb")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql" if _mysql else "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
        "CONN_MAX_AGE": float(os.environ.get("BENCH_DTDB_CONN_MAX_AGE", "600")),
    }
}
if _mysql:  # MariaDB/MySQL (benchmarks/peers/dtdb_mariadb.py): as djjobs' benchmark settings
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4", "isolation_level": "read committed"}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

"""django-tasks-db: the adapter (its Django settings and tasks are the two modules beside this one).

Runs in the peers' virtualenv only, with Django's built-in django.tasks.
"""

import os

from benchmarks.peers.common import Peer, venv_script

SETTINGS = "benchmarks.peers.django_tasks_db_settings"
# Seconds an idle db_worker sleeps before it polls again (its default: 1). It has no LISTEN/NOTIFY.
INTERVAL = float(os.environ.get("BENCH_DTDB_INTERVAL", "0.1"))
CONN_MAX_AGE = 600  # Django's default 0 reconnects around every job in db_worker


class DjangoTasksDbPeer(Peer):
    name = "django-tasks-db"
    package = "django-tasks-db"
    job_table = "django_tasks_database_dbtaskresult"
    single_case = "task.enqueue(), 1 job/transaction"
    bulk_case = "task.enqueue() x N in 1 transaction.atomic()"
    bulk_note = "no bulk API: one INSERT per job, one COMMIT"
    drain_note = "`django-admin db_worker --batch`"
    stamp_note = "the task returns time.time() at its start, read back from the result row (as djjobs' stamp)"

    def settings(self) -> str:
        import django

        return (
            f"Django {django.get_version()}, sync tasks, db_worker --interval {INTERVAL} (default 1) "
            f"--no-startup-delay (default: up to 1 s random), CONN_MAX_AGE={CONN_MAX_AGE} (Django default 0: a "
            f"reconnect around every job), one job at a time per process (no concurrency option), "
            f"no LISTEN/NOTIFY, "
            f"verbosity 1 (default)"
        )

    def worker_env(self) -> dict:
        env = super().worker_env()
        env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        env.setdefault("BENCH_DTDB_CONN_MAX_AGE", str(CONN_MAX_AGE))
        return env

    def default_latency_worker(self):
        command = [venv_script("django-admin"), "db_worker", f"--settings={SETTINGS}"]
        label = "documented defaults (--interval 1, startup delay, CONN_MAX_AGE=0)"
        return command, label, {"BENCH_DTDB_CONN_MAX_AGE": "0"}

    def install_schema(self) -> None:
        self.run([venv_script("django-admin"), "migrate", f"--settings={SETTINGS}", "--verbosity=0"])

    def truncate(self) -> None:
        self.admin.execute(f"TRUNCATE {self.job_table}")

    def done_count(self) -> int:
        return self.admin.execute(f"SELECT count(*) FROM {self.job_table} WHERE status = 'SUCCESSFUL'").fetchone()[0]

    def status_counts(self) -> dict:
        return dict(self.admin.execute(f"SELECT status, count(*) FROM {self.job_table} GROUP BY 1").fetchall())

    def window(self):
        first, last = self.admin.execute(
            f"SELECT min(started_at), max(finished_at) FROM {self.job_table} WHERE status = 'SUCCESSFUL'"
        ).fetchone()
        if first is None or last is None:
            return None, ""
        return (last - first).total_seconds(), "first started_at to last finished_at"

    def open(self) -> None:
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
        os.environ.setdefault("BENCH_DTDB_CONN_MAX_AGE", str(CONN_MAX_AGE))
        import django

        django.setup()
        from django.db import connection

        from benchmarks.peers import django_tasks_db_tasks

        self.tasks = django_tasks_db_tasks
        assert connection.get_autocommit()

    def close(self) -> None:
        try:
            from django.db import connections

            connections.close_all()
        finally:
            super().close()

    def enqueue_one(self) -> None:
        self.tasks.noop.enqueue()

    def enqueue_many(self, n: int) -> None:
        from django.db import transaction

        with transaction.atomic():
            for _ in range(n):
                self.tasks.noop.enqueue()

    def enqueue_stamp(self, key: str) -> str:
        return str(self.tasks.stamp.enqueue().id)

    def stamps(self, keys: list[str]) -> dict[str, float]:
        rows = self.admin.execute(
            f"SELECT id::text, return_value FROM {self.job_table} WHERE status = 'SUCCESSFUL' AND id = ANY(%s::uuid[])",
            [keys],
        ).fetchall()
        return {key: float(value) for key, value in rows if value is not None}

    def worker_command(self, drain: bool) -> list[str]:
        return [
            venv_script("django-admin"),
            "db_worker",
            f"--settings={SETTINGS}",
            f"--interval={INTERVAL}",
            "--no-startup-delay",
            *(["--batch"] if drain else []),
        ]


PEER = DjangoTasksDbPeer

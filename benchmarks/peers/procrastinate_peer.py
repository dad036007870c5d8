"""Procrastinate: its App (the worker CLI loads it with ``--app``), the two tasks, and the adapter.

Runs in the peers' virtualenv only. The database is BENCH_PEER_DB_URL.
"""

import os
import time

import procrastinate

from benchmarks.peers.common import Peer, venv_script, write_stamp

APP_PATH = "benchmarks.peers.procrastinate_peer.app"
# Jobs one worker process runs at once (asyncio tasks). Procrastinate's default is 1; its docs
# advise concurrency for async tasks only, and both tasks here are async.
CONCURRENCY = int(os.environ.get("BENCH_PROCRASTINATE_CONCURRENCY", "10"))

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PEER_DB_URL", "")))


@app.task(name="noop")
async def noop():
    """Does nothing."""
    return None


@app.task(name="stamp")
async def stamp(key: str):
    """Records time.time() as it starts (procrastinate keeps no return values: a line in a file)."""
    write_stamp(key, time.time())


class ProcrastinatePeer(Peer):
    name = "procrastinate"
    package = "procrastinate"
    job_table = "procrastinate_jobs"
    single_case = "task.defer(), 1 job/transaction"
    bulk_case = "task.batch_defer(), 1 call"
    bulk_note = "one INSERT through procrastinate_defer_jobs_v1"
    drain_note = "`procrastinate worker --one-shot`"
    stamp_note = "the async task appends time.time() to a file as it starts"

    def settings(self) -> str:
        return (
            f"async tasks, PsycopgConnector (pool defaults), worker --concurrency {CONCURRENCY} (default 1), "
            f"LISTEN/NOTIFY on (default), fetch/abort polling 5 s (default), delete_jobs never (default), "
            f"log level INFO (default)"
        )

    def install_schema(self) -> None:
        with self._conn() as conn:
            installed = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]
        if not installed:
            self.run([venv_script("procrastinate"), f"--app={APP_PATH}", "schema", "--apply"])

    def _conn(self):
        from benchmarks.peers.common import connect

        return connect(self.url)

    def truncate(self) -> None:
        self.admin.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, "
            "procrastinate_workers RESTART IDENTITY CASCADE"
        )

    def done_count(self) -> int:
        return self.admin.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()[0]

    def status_counts(self) -> dict:
        return dict(self.admin.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").fetchall())

    def window(self):
        first, last = self.admin.execute(
            "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') "
            "FROM procrastinate_events"
        ).fetchone()
        if first is None or last is None:
            return None, ""
        return (last - first).total_seconds(), "first 'started' to last 'succeeded' event"

    def open(self) -> None:
        app.open()  # synchronous: a SyncPsycopgConnector's pool, as procrastinate does for sync code

    def close(self) -> None:
        try:
            app.close()
        finally:
            super().close()

    def enqueue_one(self) -> None:
        noop.defer()

    def enqueue_many(self, n: int) -> None:
        noop.batch_defer(*({} for _ in range(n)))

    def enqueue_stamp(self, key: str) -> str:
        stamp.defer(key=key)
        return key

    def worker_command(self, drain: bool) -> list[str]:
        return [
            venv_script("procrastinate"),
            f"--app={APP_PATH}",
            "worker",
            f"--concurrency={CONCURRENCY}",
            *(["--one-shot"] if drain else []),
        ]


PEER = ProcrastinatePeer

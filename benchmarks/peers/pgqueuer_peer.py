"""PgQueuer: the factory ``pgq run`` starts, the two entrypoints, and the adapter.

Runs in the peers' virtualenv only. The database is BENCH_PEER_DB_URL.
"""

import asyncio
import contextlib
import os
import time

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from benchmarks.peers.common import Peer, connect, venv_script, write_stamp

FACTORY = "benchmarks.peers.pgqueuer_peer:create_pgqueuer"
# Jobs one dequeue query takes (`pgq run --batch-size`); PgQueuer's default is 10.
BATCH_SIZE = int(os.environ.get("BENCH_PGQUEUER_BATCH_SIZE", "100"))


@contextlib.asynccontextmanager
async def create_pgqueuer():
    """What `pgq run` calls: an asyncpg connection (PgQueuer's default driver) and two entrypoints."""
    connection = await asyncpg.connect(os.environ.get("BENCH_PEER_DB_URL") or None)
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        return None

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        started = time.time()
        write_stamp(job.payload.decode(), started)

    try:
        yield pgq
    finally:
        await connection.close()


class PgQueuerPeer(Peer):
    name = "pgqueuer"
    package = "pgqueuer"
    job_table = "pgqueuer"
    single_case = "Queries.enqueue(), 1 job/transaction"
    bulk_case = "Queries.enqueue(lists), 1 call"
    bulk_note = "one INSERT ... UNNEST of the lists (asyncpg)"
    drain_note = "`pgq run --mode drain`"
    stamp_note = "the async entrypoint appends time.time() to a file as it starts"

    def settings(self) -> str:
        return (
            f"async entrypoints, asyncpg driver (default), `pgq run --batch-size {BATCH_SIZE}` (default 10), "
            f"no concurrency limit (default), LISTEN/NOTIFY (default), dequeue timeout 30 s (default), "
            f"schema durability durable (default)"
        )

    def install_schema(self) -> None:
        with connect(self.url) as conn:
            installed = conn.execute("SELECT to_regclass('pgqueuer')").fetchone()[0]
        if not installed:
            self.run([venv_script("pgq"), "--pg-dsn", self.url, "install"])

    def truncate(self) -> None:
        self.admin.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics RESTART IDENTITY")

    def done_count(self) -> int:
        # Finished jobs leave the queue table; their final status is a row of pgqueuer_log.
        return self.admin.execute("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'").fetchone()[0]

    def status_counts(self) -> dict:
        counts = {
            f"queue:{k}": v
            for k, v in self.admin.execute("SELECT status::text, count(*) FROM pgqueuer GROUP BY 1").fetchall()
        }
        counts.update(
            {
                f"log:{k}": v
                for k, v in self.admin.execute("SELECT status::text, count(*) FROM pgqueuer_log GROUP BY 1").fetchall()
            }
        )
        return counts

    def window(self):
        first, last = self.admin.execute(
            "SELECT min(created), max(created) FROM pgqueuer_log WHERE status = 'successful'"
        ).fetchone()
        if first is None or last is None:
            return None, ""
        return (last - first).total_seconds(), "first to last 'successful' log row (no start time is logged)"

    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.connection = self.loop.run_until_complete(asyncpg.connect(self.url))
        self.queries = Queries(AsyncpgDriver(self.connection))

    def close(self) -> None:
        try:
            if getattr(self, "loop", None) is not None:
                self.loop.run_until_complete(self.connection.close())
                self.loop.close()
        finally:
            super().close()

    def enqueue_one(self) -> None:
        self.loop.run_until_complete(self.queries.enqueue("noop", None))

    def enqueue_singles(self, n: int) -> None:
        async def go():
            for _ in range(n):
                await self.queries.enqueue("noop", None)

        self.loop.run_until_complete(go())

    def enqueue_many(self, n: int) -> None:
        self.loop.run_until_complete(self.queries.enqueue(["noop"] * n, [None] * n, [0] * n))

    def enqueue_stamp(self, key: str) -> str:
        self.loop.run_until_complete(self.queries.enqueue("stamp", key.encode()))
        return key

    def worker_command(self, drain: bool) -> list[str]:
        return [venv_script("pgq"), "run", FACTORY, f"--batch-size={BATCH_SIZE}", *(["--mode=drain"] if drain else [])]


PEER = PgQueuerPeer

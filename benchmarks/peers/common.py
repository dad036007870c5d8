"""The peers' side of the comparison: what every peer adapter provides, and the database plumbing.

Runs in the peers' own virtualenv (``benchmarks/.venv-peers``), started by ``run_peer.py``: it may
import psycopg (installed there for every peer) but never djjobs nor the project's Django.
"""

import os
import sys
import time
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent.parent

# Every peer database holds this table: the peer's version that installed the schema. Another
# version (the pins changed) drops and recreates the database rather than migrating it.
META_TABLE = "bench_peer_meta"


def db_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def with_db(url: str, name: str) -> str:
    return urlsplit(url)._replace(path="/" + name).geturl()


def connect(url: str, **kwargs):
    import psycopg

    return psycopg.connect(url, autocommit=True, **kwargs)


def ensure_database(url: str, package: str, version: str) -> str:
    """Create the peer's database when missing, or recreate it when another version set it up.

    Returns what was done, for the log.
    """
    from psycopg import sql

    name = db_name(url)
    done = "kept"
    with connect(with_db(url, "postgres")) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            with connect(url) as conn:
                row = None
                if conn.execute("SELECT to_regclass(%s)", [META_TABLE]).fetchone()[0]:
                    row = conn.execute(f"SELECT version FROM {META_TABLE} WHERE package = %s", [package]).fetchone()
            if row and row[0] != version:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                exists = None
                done = f"dropped (schema of {package} {row[0]}), "
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            done = ("" if done == "kept" else done) + "created"
    return done


def record_version(url: str, package: str, version: str) -> None:
    with connect(url) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (package text PRIMARY KEY, version text NOT NULL)")
        conn.execute(
            f"INSERT INTO {META_TABLE} VALUES (%s, %s) ON CONFLICT (package) DO UPDATE SET version = EXCLUDED.version",
            [package, version],
        )


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def child_env(**extra: str) -> dict:
    """The environment of a peer's worker or CLI: this virtualenv's bin first, the repository importable."""
    env = dict(os.environ)
    for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONSTARTUP"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(ROOT)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    env.update(extra)
    return env


def venv_script(name: str) -> str:
    """A console script of this virtualenv (the way the peer documents its CLI)."""
    return str(Path(sys.executable).parent / name)


# -- latency stamps ------------------------------------------------------------------------


STAMP_ENV = "BENCH_PEER_STAMPS"


def write_stamp(key: str, started: float) -> None:
    """Called by a peer's ``stamp`` task as it starts: one line appended with a single write()."""
    path = os.environ.get(STAMP_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key} {started!r}\n".encode())
    finally:
        os.close(fd)


def read_stamps(path: str) -> dict[str, float]:
    stamps = {}
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return stamps
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value:
            stamps[key] = float(value)
    return stamps


# -- the adapter ---------------------------------------------------------------------------


class Peer:
    """What ``run_peer.py`` needs of a peer. Subclasses: one module per peer."""

    name = ""  # as given to --peers
    package = ""  # its PyPI distribution
    job_table = ""  # ANALYZEd after the processing phase's enqueue
    single_case = ""  # how one job is enqueued (table case)
    bulk_case = ""
    bulk_note = ""
    drain_note = ""  # how its workers exit once the queue is empty
    stamp_note = ""  # how the stamp task reports its start time

    def __init__(self, url: str, stamp_file: str):
        self.url = url
        self.stamp_file = stamp_file
        self.version = version_of(self.package)
        self.admin = None

    # -- settings, said in the output
    def settings(self) -> str:
        """The settings the processing and latency workers use, and how they differ from the defaults."""
        raise NotImplementedError

    def default_latency_worker(self) -> tuple[list[str], str, dict] | None:
        """(command, label, extra environment) of a latency worker with the peer's documented defaults,
        when they would change the pick-up latency."""
        return None

    # -- database
    def setup(self) -> str:
        done = ensure_database(self.url, self.package, self.version)
        self.install_schema()
        record_version(self.url, self.package, self.version)
        self.admin = connect(self.url)
        self.admin.execute("VACUUM")  # as run.py does for djjobs: no dead catalog rows from earlier runs
        return done

    def install_schema(self) -> None:
        raise NotImplementedError

    def truncate(self) -> None:
        raise NotImplementedError

    def analyze(self) -> None:
        self.admin.execute(f"VACUUM ANALYZE {self.job_table}")

    def done_count(self) -> int:
        raise NotImplementedError

    def status_counts(self) -> dict:
        raise NotImplementedError

    def window(self) -> tuple[float | None, str]:
        """Seconds of the processing as the peer's rows record it, and what they measure."""
        return None, ""

    # -- enqueue (in this process)
    def open(self) -> None:
        pass

    def close(self) -> None:
        if self.admin is not None:
            self.admin.close()

    def enqueue_one(self) -> None:
        raise NotImplementedError

    def enqueue_singles(self, n: int) -> None:
        """``n`` jobs, one transaction each."""
        for _ in range(n):
            self.enqueue_one()

    def enqueue_many(self, n: int) -> None:
        """``n`` jobs with the peer's bulk API (one call)."""
        raise NotImplementedError

    def enqueue_stamp(self, key: str) -> str:
        """Enqueue a ``stamp`` job; returns the key its start time is found under."""
        raise NotImplementedError

    def stamps(self, keys: list[str]) -> dict[str, float]:
        return read_stamps(self.stamp_file)

    # -- workers
    def worker_command(self, drain: bool) -> list[str]:
        raise NotImplementedError

    def worker_env(self) -> dict:
        return child_env(BENCH_PEER_DB_URL=self.url, **{STAMP_ENV: self.stamp_file})

    def run(self, command: list[str], timeout: float = 300) -> None:
        """Run one of the peer's CLI commands (schema install); raise with its output when it fails."""
        import subprocess

        proc = subprocess.run(command, cwd=ROOT, env=self.worker_env(), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command[:3])}... exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
            )


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:.0f} s")
        time.sleep(interval)

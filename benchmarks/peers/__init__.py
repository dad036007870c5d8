"""Peers of djjobs measured side by side by ``benchmarks/run.py``: django-tasks-db, Procrastinate, PgQueuer.

This module runs in the project's virtualenv (standard library only: the peers' driver imports the
package too, from the peers' virtualenv). It creates ``benchmarks/.venv-peers`` with the Python
running it, installs the pinned peers there from PyPI (again only when the pins change), then runs
``run_peer.py PEER`` with that virtualenv's python, once per peer, each on its own database
``<benchmark database>_<peer>`` on the same server, and collects the JSON each run writes.
"""

import collections
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent.parent
VENV = ROOT / "benchmarks" / ".venv-peers"
STAMP = VENV / "djjobs-peers-requirements.json"
RUN_PEER = Path(__file__).resolve().parent / "run_peer.py"

PEERS = ("django-tasks-db", "procrastinate", "pgqueuer")
REQUIREMENTS = (
    "django-tasks-db==0.13.0",
    "Django==6.0.10",  # django-tasks-db 0.13.0 declares Django 5.2 and 6.0: the built-in django.tasks of 6.0
    "procrastinate==3.10.0",
    "pgqueuer==1.6.0",
    "typer==0.28.0",  # pgqueuer 1.6.0's `pgq run` fails under typer 0.29 (AttributeError in its log setup)
    "asyncpg==0.32.0",  # PgQueuer's default driver
    "psycopg[binary,pool]==3.3.9",  # Procrastinate's and Django's driver; the peers' driver script's too
)
INSTALL_TIMEOUT = 1200
PEER_TIMEOUT = 3600


class PeerSetupError(RuntimeError):
    pass


def peer_names(value: str | None) -> list[str]:
    """``--peers`` (comma-separated, '_' or '-') to peer names; all peers when empty."""
    if not value:
        return list(PEERS)
    names = []
    for raw in value.split(","):
        name = raw.strip().lower().replace("_", "-")
        if not name:
            continue
        if name not in PEERS:
            raise ValueError(f"unknown peer {raw.strip()!r} (known: {', '.join(PEERS)})")
        names.append(name)
    return names


def peer_db_url(db_url: str, peer: str) -> str:
    """The peer's own database on the benchmark's server: ``<benchmark database>_<peer>``."""
    parts = urlsplit(db_url)
    base = unquote(parts.path.lstrip("/")) or "djjobs_bench"
    return parts._replace(path=f"/{base}_{peer.replace('-', '_')}").geturl()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_peers_venv(log=print) -> Path:
    """Create or update benchmarks/.venv-peers; returns its python. Raises PeerSetupError."""
    wanted = {"python": platform.python_version(), "requirements": list(REQUIREMENTS)}
    python = venv_python()
    try:
        current = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        current = None
    if current == wanted and python.exists():
        return python
    if python.exists() and (current or {}).get("python") != wanted["python"]:
        log(f"  peers' virtualenv: Python {(current or {}).get('python', '?')} -> {wanted['python']}: recreated")
        shutil.rmtree(VENV)
    if not python.exists():
        log(f"  creating {_shown(VENV)} with Python {wanted['python']} ({sys.executable})")
        proc = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise PeerSetupError(f"python -m venv failed: {(proc.stderr or proc.stdout)[-800:]}")
    log(f"  pip install {' '.join(REQUIREMENTS)} (into {_shown(VENV)}; takes a minute the first time)")
    sys.stdout.flush()
    try:
        proc = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise PeerSetupError(f"pip install did not finish in {INSTALL_TIMEOUT} s") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if "is ignored: it is neither" not in line]
        raise PeerSetupError(f"pip install failed: {' | '.join(lines[-6:])[-800:]}")
    STAMP.write_text(json.dumps(wanted, indent=1))
    return python


def run_peers(sizes: dict, db_url: str, peers: list[str], log=print) -> list[dict]:
    """Measure each peer (phases 1-4) in its own run of run_peer.py; one result dict per peer.

    A result has "peer", "version", "settings", "rows" (the table's rows), "metrics" (for the ratios)
    and "error" (None, or why the peer could not be measured). Never raises for a peer's failure.
    """
    scheme = urlsplit(db_url).scheme
    if scheme not in ("postgres", "postgresql", "pgsql", "psql"):
        return [{"peer": p, "error": f"needs PostgreSQL (DATABASE_URL is {scheme}://)"} for p in peers]
    try:
        python = ensure_peers_venv(log)
    except Exception as exc:  # noqa: BLE001 - every peer's row says why
        return [{"peer": p, "error": f"peers' virtualenv: {exc}"} for p in peers]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PYTHONPATH"] = str(ROOT)
    results = []
    for peer in peers:
        with tempfile.TemporaryDirectory(prefix="djjobs-peers-") as tmp:
            out = Path(tmp) / f"{peer}.json"
            command = [
                str(python),
                str(RUN_PEER),
                peer,
                "--db-url",
                peer_db_url(db_url, peer),
                "--sizes-json",
                json.dumps(sizes),
                "--json-out",
                str(out),
            ]
            code, tail = _run_teeing_stderr(command, env)
            data = None
            if out.exists():
                try:
                    data = json.loads(out.read_text())
                except ValueError:
                    data = None
            if data is None:
                reason = "timed out" if code is None else f"exited {code}"
                data = {"peer": peer, "error": f"run_peer.py {reason}: {' | '.join(tail[-4:])[-600:]}"}
        results.append(data)
    return results


def _run_teeing_stderr(command: list[str], env: dict) -> tuple[int | None, list[str]]:
    """Run with stdout passed through and stderr both passed through and kept (its last lines)."""
    tail = collections.deque(maxlen=40)
    # Its own session: on a time-out the driver and the workers it started go together.
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def pump():
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        code = proc.wait(PEER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    thread.join(timeout=5)
    return code, [line for line in tail if line]

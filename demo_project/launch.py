#!/usr/bin/env python
"""Run the demo's web server and its workers together; Ctrl-C (or SIGTERM) stops both.

    python demo_project/launch.py [--host 127.0.0.1] [--port 8000]

Each child runs in its own session, so a Ctrl-C in the terminal reaches only this launcher,
which then passes exactly one SIGINT to each child's process group: the workers finish the
jobs they are running (a second signal would make them drop them), and runserver stops with
its autoreloader. A child that does not stop in time gets SIGTERM, then SIGKILL. If either
child exits by itself, the other is stopped too and the launcher exits non-zero.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("--noreload", action="store_true", help="Run runserver without its autoreloader.")
    options = parser.parse_args()

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    manage = [sys.executable, str(ROOT / "manage.py")]
    web_cmd = manage + ["runserver", f"{options.host}:{options.port}"]
    if options.noreload:
        web_cmd.append("--noreload")
    commands = {"web": web_cmd, "workers": manage + ["run_workers"]}

    stop_requested = []

    def on_signal(signum, frame):
        stop_requested.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children: dict[str, subprocess.Popen] = {}
    for name, cmd in commands.items():
        children[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        print(f"[launch] started {name} (pid {children[name].pid}): {' '.join(cmd[1:])}", flush=True)
    print("[launch] press Ctrl-C to stop the web server and the workers", flush=True)

    exited_by_itself = None
    while not stop_requested and exited_by_itself is None:
        for name, child in children.items():
            if child.poll() is not None:
                exited_by_itself = name
                print(f"[launch] {name} exited with code {child.returncode}; stopping the rest", flush=True)
                break
        else:
            time.sleep(0.2)

    if stop_requested:
        print(
            f"[launch] {signal.Signals(stop_requested[0]).name} received: stopping the web server and the workers",
            flush=True,
        )
    _stop(children)
    codes = {name: child.returncode for name, child in children.items()}
    print("[launch] stopped: " + ", ".join(f"{name} exit code {code}" for name, code in codes.items()), flush=True)
    return 1 if exited_by_itself else 0


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def _stop(children: dict[str, subprocess.Popen]) -> None:
    """SIGINT once to each child's group; after the grace period SIGTERM, then SIGKILL."""
    for child in children.values():
        if child.poll() is None:
            _signal_group(child, signal.SIGINT)
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(c.poll() is None for c in children.values()):
            time.sleep(0.1)
        for name, child in children.items():
            if child.poll() is None:
                print(f"[launch] {name} is still running: sending {sig.name}", flush=True)
                _signal_group(child, sig)
    for child in children.values():
        child.wait()
    # runserver's autoreloader child lives in the same group: make sure nothing is left.
    for child in children.values():
        _signal_group(child, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())

"""Measuring helpers shared by ``benchmarks/run.py`` (djjobs) and ``benchmarks/peers/run_peer.py`` (peers).

Standard library only: the peers' driver imports it from the peers' own virtualenv, where neither
Django 6.1 nor djjobs is installed.
"""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} jobs/s" if seconds > 0 else "n/a"


def mib(kib: int | None) -> str:
    return "n/a" if not kib else f"{kib / 1024:.1f} MiB"


def percentile(sorted_values: list, pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


# -- a shared machine ------------------------------------------------------------------


class OthersCpu:
    """CPU used while a case runs: by other processes, by our workers and by our database backends.

    On a shared machine another test suite steals cores from the workers: the table shows
    how much ("others' CPU", % of all cores), and CPU time per job, which such contention
    moves much less than wall-clock rates. Every 0.5 s it reads /proc/<pid>/stat (utime +
    stime) of every process. Ours are this process, its descendants (workers) and the
    PostgreSQL backends connected to the benchmark database ("db"); PostgreSQL's auxiliary
    processes (WAL writer, checkpointer...) are shared and left out; everything else is
    "others". A process that starts and ends between two reads (0.5 s apart) is missed, so "others" is a
    lower bound; so is "db" for backends that end before the next read (only short runs suffer). Python
    CPU is getrusage (this process, and the workers once reaped).
    Linux only (None elsewhere).
    """

    def __init__(self, db_name: str):
        self.db_name = db_name
        self.percent = None  # others, % of all cores
        self.db_seconds = None  # CPU of our database backends
        self.children_seconds = None  # CPU of our reaped child processes (workers)
        self.self_seconds = None  # CPU of this process
        self._active = False
        self._baseline: dict[int, tuple[str, int]] = {}
        self._last: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._cmdlines: dict[int, str] = {}
        self._scan_cpu = 0.0  # the meter's own CPU, left out of this process's

    def __enter__(self) -> "OthersCpu":
        import resource

        self._usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        if not Path("/proc/stat").exists():
            return self
        self._active = True
        self._baseline = self._scan()
        self._last = dict(self._baseline)
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import resource

        def cpu(before, after):
            return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        if self._active:
            self._stop.set()
            self._thread.join()
            self._merge(self._scan())
        self.self_seconds = cpu(self._usage[0], resource.getrusage(resource.RUSAGE_SELF)) - self._scan_cpu
        self.children_seconds = cpu(self._usage[1], resource.getrusage(resource.RUSAGE_CHILDREN))
        if not self._active:
            return
        wall = time.perf_counter() - self._started
        hz = os.sysconf("SC_CLK_TCK")
        spent = {"others": 0, "db": 0}
        for pid, (kind, ticks) in self._last.items():
            base = self._baseline.get(pid)
            spent[kind] += ticks - (base[1] if base and base[0] == kind else 0)
        self.db_seconds = max(0, spent["db"]) / hz
        others = max(0, spent["others"]) / hz
        self.percent = 100 * others / (wall * (os.cpu_count() or 1)) if wall > 0 else None

    def per_job(self, n: int, python: str = "children") -> str:
        """'py X + pg Y ms/job': CPU per job of the workers (or this process) and of our backends."""
        py = self.self_seconds if python == "self" else self.children_seconds
        if not n or py is None:
            return ""
        pg = "n/a" if self.db_seconds is None else f"{self.db_seconds / n * 1000:.2f}"
        return f"py {py / n * 1000:.2f} + pg {pg}"

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._merge(self._scan())

    def _merge(self, scan: dict[int, tuple[str, int]]) -> None:
        for pid, (kind, ticks) in scan.items():
            if ticks >= self._last.get(pid, (kind, 0))[1]:
                self._last[pid] = (kind, ticks)

    def _scan(self) -> dict[int, tuple[str, int]]:
        """pid -> (kind, utime + stime ticks) of every process that is not ours, and of our backends."""
        started = time.thread_time()
        try:
            return self._scan_procs()
        finally:
            self._scan_cpu += time.thread_time() - started

    def _scan_procs(self) -> dict[int, tuple[str, int]]:
        stats = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            comm = raw[raw.find("(") + 1 : raw.rfind(")")]
            fields = raw[raw.rfind(")") + 2 :].split()
            stats[int(entry.name)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
        me = os.getpid()
        found = {}
        for pid, (comm, _ppid, ticks) in stats.items():
            if self._ours(pid, stats, me):
                continue
            if comm.startswith("postgres"):
                kind = self._postgres_kind(pid)
                if kind == "ours":
                    found[pid] = ("db", ticks)
                elif kind == "foreign":
                    found[pid] = ("others", ticks)
                continue
            found[pid] = ("others", ticks)
        return found

    @staticmethod
    def _ours(pid: int, stats: dict, me: int) -> bool:
        for _ in range(64):
            if pid == me:
                return True
            if pid not in stats or pid <= 1:
                return False
            pid = stats[pid][1]
        return False

    def _postgres_kind(self, pid: int) -> str:
        """'ours' (a backend of the benchmark database), 'foreign' (another database) or 'shared'."""
        if pid not in self._cmdlines:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    self._cmdlines[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                self._cmdlines[pid] = ""
        words = self._cmdlines[pid].split()
        for i, word in enumerate(words):
            if i >= 1 and ("(" in word or word == "[local]"):  # "user db host(port) state"
                return "ours" if words[i - 1] == self.db_name else "foreign"
        return "shared"


# -- worker processes ------------------------------------------------------------------


class SampledProcess:
    """A worker process whose peak RSS is followed in /proc/<pid>/status (VmHWM) every 20 ms.

    stdout goes to /dev/null, stderr is kept (its tail is printed when the process exits non-zero).
    """

    label = "worker"

    def __init__(self, command: list[str], cwd: Path | str, env: dict):
        self.command = command
        self.popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.vm_hwm_kib = None
        self.stderr = ""
        self._done = threading.Event()
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _drain_stderr(self):
        self.stderr = self.popen.stderr.read()

    def _sample(self):
        path = f"/proc/{self.popen.pid}/status"
        while not self._done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.vm_hwm_kib = max(self.vm_hwm_kib or 0, int(line.split()[1]))
                            break
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                return
            self._done.wait(0.02)

    def wait(self, timeout: float | None = None, quiet_codes: tuple = ()) -> int:
        # Peak RSS is VmHWM, not wait4's ru_maxrss: on Linux that keeps the pre-exec peak, i.e.
        # this benchmark's own RSS at fork time, and over-reports a small worker.
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.label} {self.popen.pid} still running after {timeout}s") from None
        self._done.set()
        self._sampler.join()
        self._stderr_thread.join(timeout=5)
        if self.popen.returncode != 0 and self.popen.returncode not in quiet_codes:
            print(f"  !! {self.label} exited {self.popen.returncode}:\n{self.stderr[-3000:]}", flush=True)
        return self.popen.returncode

    def terminate(self, timeout: float = 30, quiet_codes: tuple = ()) -> int:
        """SIGTERM, then wait; SIGKILL if it is still running after ``timeout`` seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout, quiet_codes)
        except TimeoutError:
            self.popen.kill()
            self.wait(10, quiet_codes=(-signal.SIGKILL,))
            raise

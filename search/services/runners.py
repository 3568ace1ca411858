"""The warm runner pool of one django-q2 worker, and one-job runners for pilots.

A runner is `python -m search.engine.runner` in its own process group (docs/traps.md, the daemonic-worker
trap): joblib there gets every core, and one killpg ends it with every loky child.

Each runner also gets its own folder for joblib's memory maps (JOBLIB_TEMP_FOLDER): the killpg takes loky's
resource tracker too, which would have removed them, so `kill_group` removes the folder itself, and a
worker starting up removes the folders of runners whose worker died (docs/traps.md, cancel and stop)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from search.engine.fits import machine_name
from search.engine.pilot import pump_events
from search.engine.procs import processes
from search.engine.run import Job


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The loky workers are not our children: wait (briefly) until the kernel has really ended them too. A
    # worker holding a large model takes a moment to exit, and "stopped" must mean nothing runs any more.
    deadline = time.monotonic() + 5.0
    while _group_running(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    folder = _temp_folders.pop(proc.pid, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


# joblib's own choice, kept: /dev/shm when it has room (joblib asks for 2 GB free), else a folder on disk.
SHARED_MEMORY = Path("/dev/shm")
SHARED_MEMORY_MIN_FREE = 2_000_000_000
_temp_folders: dict[int, Path] = {}  # runner pid -> its JOBLIB_TEMP_FOLDER


def _temp_roots() -> list[Path]:
    """Where runners' memory-map folders may be: this user's folder in /dev/shm, and one under FANOUT_VAR_DIR."""
    return [SHARED_MEMORY / f"fanout-{os.getuid()}", settings.VAR_DIR / "tmp"]


def _temp_root() -> Path:
    try:
        stats = os.statvfs(SHARED_MEMORY)
        if stats.f_bavail * stats.f_frsize > SHARED_MEMORY_MIN_FREE and os.access(SHARED_MEMORY, os.W_OK):
            return _temp_roots()[0]
    except OSError:
        pass
    return _temp_roots()[1]


def _temp_folder() -> Path:
    """A new runner's folder, named after this host and this process (its parent), which it never outlives."""
    return _temp_root() / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def temp_folders_sweep() -> int:
    """Remove the memory-map folders of runners whose parent process on this host is gone; how many.

    A runner dies with its parent (PR_SET_PDEATHSIG) and kills its own group, loky's resource tracker
    included, so nothing else removes them. Folders of live parents, and of other hosts sharing the
    folder, are left alone."""
    removed = 0
    host = socket.gethostname()
    for root in _temp_roots():
        with contextlib.suppress(OSError):
            for entry in root.iterdir():
                name, _, rest = entry.name.rpartition("-")
                owner_host, _, pid = name.rpartition("-")
                if owner_host != host or not pid.isdigit() or not rest or _pid_running(int(pid)):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc (not Linux): it answered the signal


def _group_running(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    return any(p.pgid == pgid and not p.zombie for p in processes().values())


# A warm runner waits in each django-q2 worker: interpreter started, scikit-learn imported, loky pool
# up. Taking it saves ~2 s per unit. A runner whose job ended cleanly is kept as the next spare (its
# pool and imports stay warm, so back-to-back units and halving rounds start at once); any other end
# (cancel, timeout, crash, lost lease) kills its whole group, and a fresh spare is started when idle.
RUNNER_MAX_JOBS = 200  # a reused runner is retired after this many jobs, bounding what a leak could hold


@dataclass
class Runner:
    """One runner process with its event stream; it takes one job per line on stdin, one after another."""

    proc: subprocess.Popen[str]
    events: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    jobs: int = 0
    machine: str = field(default_factory=machine_name)  # the name its results carry (FANOUT_MACHINE_NAME)

    def __post_init__(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=pump_events, args=(self.proc.stdout, self.events), daemon=True).start()
        threading.Thread(target=_drain, args=(self.proc.stderr, self.stderr), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, job: Job) -> None:
        assert self.proc.stdin is not None
        self.stderr.clear()
        self.jobs += 1
        self.proc.stdin.write(json.dumps(job.to_dict(), allow_nan=False) + "\n")
        self.proc.stdin.flush()


_spare: Runner | None = None


_keep_spare = False


def _start_runner(*, warm: bool) -> subprocess.Popen[str]:
    for pid in [pid for pid in _temp_folders if not _pid_running(pid)]:  # ended without kill_group (a pilot)
        shutil.rmtree(_temp_folders.pop(pid), ignore_errors=True)
    folder = _temp_folder()  # joblib creates it when it first memory-maps an array
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.engine.runner", *(["--warm"] if warm else [])],
        cwd=str(settings.BASE_DIR),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so one killpg takes every loky child too
        env={**os.environ, "FANOUT_RUNNER_PARENT": str(os.getpid()), "JOBLIB_TEMP_FOLDER": str(folder)},
    )
    _temp_folders[proc.pid] = folder
    return proc


@contextlib.contextmanager
def runners_kept() -> Iterator[None]:
    """Inside, a cleanly finished runner is kept for the next unit this process runs, as a worker keeps its
    spare: for a process that runs a search's units one after another itself (`runsearch --local`, the tests'
    inline runs), so its refit and its later units start at once instead of in a cold interpreter (~2 s
    each). On the way out the kept runner is ended, so no runner outlives the run."""
    global _keep_spare, _spare
    before = _keep_spare
    _keep_spare = True
    try:
        yield
    finally:
        _keep_spare = before
        if not before and _spare is not None:
            spare, _spare = _spare, None
            kill_group(spare.proc)


def keep_warm_runner(**kwargs: Any) -> None:
    """django-q2 `post_spawn` receiver: every worker keeps one warm runner ready."""
    global _keep_spare, _spare
    _keep_spare = True
    temp_folders_sweep()  # what runners of dead workers left behind
    if _spare is None:
        _spare = Runner(_start_runner(warm=True))


def spare_replace() -> None:
    global _spare
    if _keep_spare and (_spare is None or not _spare.alive()):
        _spare = Runner(_start_runner(warm=True))


def runner_take(job: Job) -> Runner:
    """The spare (kept from the last unit, or warmed while idle) if it is alive and answers for this machine's
    name, else a new runner; `job` sent."""
    global _spare
    runner, _spare = _spare, None
    if runner is not None and runner.alive() and runner.machine != machine_name():
        kill_group(runner.proc)  # started under another FANOUT_MACHINE_NAME: its results would say so
    if runner is None or not runner.alive():
        runner = Runner(_start_runner(warm=False))
    runner.send(job)
    return runner


def runner_release(runner: Runner, *, reusable: bool) -> None:
    """Keep a cleanly finished runner as the next spare; otherwise kill its whole group."""
    global _spare
    if reusable and _keep_spare and _spare is None and runner.alive() and runner.jobs < RUNNER_MAX_JOBS:
        _spare = runner
        return
    kill_group(runner.proc)


def spawn_runner(job: Job) -> subprocess.Popen[str]:
    """A one-job runner (its stdin closed after `job`, so it exits at the end), for pilots."""
    proc = _start_runner(warm=False)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(job.to_dict(), allow_nan=False) + "\n")
    proc.stdin.close()
    return proc


def _drain(stream: IO[str], tail: deque[str]) -> None:
    """Keep reading the runner's stderr so a chatty estimator can never block on a full pipe."""
    for line in stream:
        tail.append(line)

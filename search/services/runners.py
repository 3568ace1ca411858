"""The warm runner pool of one django-q2 worker, and one-job runners for pilots.

A runner is `python -m search.engine.runner` in its own process group (docs/traps.md, the daemonic-worker
trap): joblib there gets every core, and one killpg ends it with every loky child."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings

from search.engine.pilot import pump_events
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


def _group_running(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False  # no /proc (not Linux): nothing to wait for
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


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
    return subprocess.Popen(
        [sys.executable, "-m", "search.engine.runner", *(["--warm"] if warm else [])],
        cwd=str(settings.BASE_DIR),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so one killpg takes every loky child too
        env={**os.environ, "FANOUT_RUNNER_PARENT": str(os.getpid())},
    )


def keep_warm_runner(**kwargs: Any) -> None:
    """django-q2 `post_spawn` receiver: every worker keeps one warm runner ready."""
    global _keep_spare, _spare
    _keep_spare = True
    if _spare is None:
        _spare = Runner(_start_runner(warm=True))


def spare_replace() -> None:
    global _spare
    if _keep_spare and (_spare is None or not _spare.alive()):
        _spare = Runner(_start_runner(warm=True))


def runner_take(job: Job) -> Runner:
    """The spare (kept from the last unit, or warmed while idle) if it is alive, else a new runner; `job` sent."""
    global _spare
    runner, _spare = _spare, None
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

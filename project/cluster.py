"""Start and stop this machine's cluster (tests, benchmarks, `manage.py serve`), and the process-tree helpers
`manage.py fanoutcluster` stops its qcluster with.

docs/traps.md, cancel and stop: django-q2's `qcluster` does not stop reliably on its own. A SIGTERM to its
main process waits for the running unit (hours). A SIGTERM to every process at once (a group kill, or
systemd's default KillMode=control-group) kills the sentinel while it waits on a multiprocessing Event,
and the main process then blocks for ever in that Event's `set()`. So a machine runs `manage.py
fanoutcluster`: qcluster as its child, one SIGTERM forwarded, and after FANOUT_STOP_SECONDS a SIGKILL to
every process left below it, the runners' own process groups included (it is their subreaper, so an
orphan stays below it). `start_qcluster` starts that in a session of its own; `stop_qcluster` sends
SIGTERM to it alone and SIGKILLs its group and everything below it only if something is left after the
grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from search.engine.procs import Proc, processes

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ["manage.py", "fanoutcluster"]


def start_qcluster(env: dict[str, str], log_path: Path | None, ready_timeout: float = 60) -> subprocess.Popen[bytes]:
    """`manage.py fanoutcluster` in its own session. With a log file, returned once the log says the
    qcluster is running; without one it shares this process's output and is returned at once."""
    if log_path is None:
        return subprocess.Popen([sys.executable, *COMMAND], cwd=ROOT, env=env, start_new_session=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *COMMAND], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + ready_timeout
    while b" running." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_qcluster(proc)
            raise RuntimeError(f"qcluster did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_qcluster(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM to the main process only (it stops everything below it within FANOUT_STOP_SECONDS); after
    `grace` seconds, SIGKILL to whatever is left: its group and every process below it."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (proc.poll() is None or group_alive(proc.pid)):
        time.sleep(0.05)
    if proc.poll() is None:
        kill_tree(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def descendants(root: int, procs: dict[int, Proc] | None = None) -> set[int]:
    """The running processes below `root` (children, their children, …); zombies do not count."""
    procs = processes() if procs is None else procs
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return {pid for pid in found if not procs[pid].zombie}


def become_subreaper() -> None:
    """Orphans below this process are re-parented to it, not to init (Linux PR_SET_CHILD_SUBREAPER), so
    `descendants` still finds the workers and runners of a qcluster whose main process died."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def reap_children(keep: int | None = None) -> None:
    """Collect the exit status of ended children (orphans re-parented here), except `keep`'s (a Popen's)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in (0, keep):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def kill_tree(root: int, timeout: float = 5.0) -> int:
    """SIGKILL every process below `root` and every other process group they are in (a runner's group holds
    its loky workers), until none runs or `timeout` passes; returns how many processes were signalled."""
    own_group = os.getpgid(0)
    signalled: set[int] = set()
    deadline = time.monotonic() + timeout
    while (procs := processes()) and (left := descendants(root, procs)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pgid in {procs[pid].pgid for pid in left} - {own_group}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        signalled |= left
        time.sleep(0.02)
    return len(signalled)

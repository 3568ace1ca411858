"""Start and stop a `manage.py qcluster` child process (tests, benchmarks).

Stop it the way a supervisor should (docs/traps.md, cancel and stop): SIGTERM to the main pid only, so django-q2
shuts its own children down, then SIGKILL to the whole process group if anything is left. Killing
only the main pid would leave a headless cluster; signalling every process at once can hang it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_qcluster(env: dict[str, str], log_path: Path | None, ready_timeout: float = 60) -> subprocess.Popen[bytes]:
    """A qcluster in its own session. With a log file, returned once the log says it is running;
    without one it shares this process's output and is returned at once."""
    if log_path is None:
        return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
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
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (proc.poll() is None or group_alive(proc.pid)):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

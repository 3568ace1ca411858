"""The isolated runner: `python -m search.engine.runner` reads Jobs as JSON, one per line on stdin, and
writes one JSON line per event on stdout (per job: `start`, one `fits` per finished task with its cells'
results, `end`; for a refit job `start`, `refit`, `end`; or `error`, after which it exits). With `--warm` it
first starts its loky pool, then waits for a job; a worker keeps one such spare, and keeps a runner whose job
ended for its next unit. It exits at EOF.

Why a separate process: django-q2 workers are daemonic, and inside a daemonic process joblib
silently runs `n_jobs=1` (docs/traps.md, the daemonic-worker trap). This process is an ordinary
interpreter, so loky gets every core. It is started in its own process group with PDEATHSIG; on SIGTERM
it kills its whole group, so no loky child outlives a cancelled, timed-out or killed unit.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from typing import IO, Any

from .run import Job, RunInfo, run_info, run_job_batches, warm_up


def kill_group(signum: int, frame: object) -> None:
    os.killpg(0, signal.SIGKILL)


def _die_with_parent() -> None:
    """SIGTERM this process (→ `kill_group`) when the worker that started it dies (Linux prctl)."""
    parent = int(os.environ.get("FANOUT_RUNNER_PARENT", "0"))
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        kill_group(signal.SIGTERM, None)


def _emit(out: IO[str], event: str, **payload: Any) -> None:
    out.write(json.dumps({"event": event, **payload}, allow_nan=False) + "\n")
    out.flush()


def _refit_one(job: Job, out: IO[str]) -> None:
    from .refit import refit  # not at the top: it imports skops (a warm runner imports it while it waits)

    info = run_info(job)
    _emit(out, "start", **{k: v for k, v in info.__dict__.items() if k != "worker_pids"})
    _emit(out, "refit", **refit(job, info).to_dict())
    _emit(out, "end", worker_pids=[os.getpid()])


def _run_one(job: Job, out: IO[str]) -> None:
    if job.task == "refit":
        _refit_one(job, out)
        return
    info_box: list[RunInfo] = []

    def started(info: RunInfo) -> None:
        info_box.append(info)
        _emit(out, "start", **{k: v for k, v in info.__dict__.items() if k != "worker_pids"})

    for batch in run_job_batches(job, on_start=started):  # one line per dispatched task, however many fits
        _emit(out, "fits", fits=[result.to_dict() for result in batch])
    pids = sorted(info_box[0].worker_pids) if info_box else []
    _emit(out, "end", worker_pids=pids)


def main() -> int:
    # The protocol gets its own copy of stdout; stray prints from estimators go to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    signal.signal(signal.SIGTERM, kill_group)
    _die_with_parent()
    try:
        if "--warm" in sys.argv:
            warm_up()
            from . import refit  # noqa: F401 - skops now, while idle, not on a refit's critical path
        for line in sys.stdin:  # one job per line; the worker keeps a runner whose job ended for its next unit
            if line.strip():
                _run_one(Job.from_dict(json.loads(line)), out)
        return 0
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor as one line
        _emit(out, "error", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())

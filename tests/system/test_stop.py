"""Stopping a machine's cluster the way service managers do (docs/traps.md, cancel and stop): SIGTERM to its
main process alone (`kill PID`, systemd's KillMode=mixed) or to its whole process group at once (a group
kill; systemd's default KillMode=control-group signals every process of the service the same way). Either
way, with a unit running on every core, every process ends within 10 s: the cluster (main process,
sentinel, pusher, monitor, worker), the worker's runner and the runner's loky workers. The unit that was
running is handed out again at once, and no memory-mapped copy of its data is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import joblib
import pytest

from search.engine.procs import processes
from search.models import Result, Search, Status, WorkUnit
from search.services.searches import plan_search, search_create
from tests.services.test_runners import BIG, memmap_folders, started
from tests.services.test_units import alive
from tests.system.test_worker_faults import wait_for

STOP_SECONDS = 10  # the bound the issue sets for every process to be gone
CORES = joblib.cpu_count()  # the loky workers a runner is granted here (CPU affinity and quotas included)
pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def group(pgid: int) -> set[int]:
    """The running processes of process group `pgid` (zombies do not count)."""
    return {p.pid for p in processes().values() if p.pgid == pgid and not p.zombie}


def loky_workers(pids: set[int]) -> set[int]:
    def cmdline(pid: int) -> bytes:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read()
        except OSError:
            return b""

    return {p for p in pids if b"popen_loky_posix" in cmdline(p)}


def unit_on_every_core(cluster: subprocess.Popen[bytes]) -> tuple[Search, set[int], float]:
    """A search whose unit runs on every core with its data memory-mapped; every process that must end, and
    when the runner started."""
    search = search_create(plan=plan_search(BIG))
    wait_for(lambda: WorkUnit.objects.get(search=search).runner_pid is not None, 60, "the unit to start")
    unit = WorkUnit.objects.get(search=search)
    assert unit.runner_pid is not None and unit.worker_pid is not None
    runner_pid = unit.runner_pid
    since = started(runner_pid)
    wait_for(lambda: len(loky_workers(group(runner_pid))) == CORES, 60, "a loky worker per core")
    wait_for(lambda: memmap_folders(runner_pid, since), 60, "joblib to memory-map the data")
    cluster_pids, runner_pids = group(cluster.pid), group(runner_pid)
    assert {cluster.pid, unit.worker_pid} <= cluster_pids  # main process, sentinel, pusher, monitor, worker
    assert runner_pid in runner_pids and len(loky_workers(runner_pids)) == CORES
    assert Search.objects.get(pk=search.pk).status == Status.RUNNING
    return search, cluster_pids | runner_pids, since


def assert_everything_ends(
    cluster: subprocess.Popen[bytes], search: Search, pids: set[int], runner_since: float, since: float
) -> None:
    deadline = since + STOP_SECONDS
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sorted(p for p in pids if alive(p))
    assert not left, f"still running {STOP_SECONDS} s after the SIGTERM: {left}"
    print(f"\nevery process gone {time.monotonic() - since:.1f} s after the SIGTERM")
    assert cluster.wait(timeout=5) == 0
    unit = WorkUnit.objects.get(search=search)
    assert unit.status == Status.QUEUED and unit.attempt == 1  # handed out again at once, not after its lease
    assert "ended mid-unit" in unit.error
    assert Result.objects.filter(search=search).count() < search.n_fits
    assert memmap_folders(unit.runner_pid or 0, runner_since) == []


def test_sigterm_to_the_main_process_ends_every_process_within_10_s(qcluster: Any) -> None:
    search, pids, runner_since = unit_on_every_core(qcluster)
    since = time.monotonic()
    qcluster.send_signal(signal.SIGTERM)
    assert_everything_ends(qcluster, search, pids, runner_since, since)


def test_sigterm_to_the_whole_group_ends_every_process_within_10_s(qcluster: Any) -> None:
    search, pids, runner_since = unit_on_every_core(qcluster)
    since = time.monotonic()
    os.killpg(qcluster.pid, signal.SIGTERM)  # every process of the cluster at once, as systemd does by default
    assert_everything_ends(qcluster, search, pids, runner_since, since)

"""A worker keeps the runner of a cleanly finished unit for its next unit (pool and imports warm), and
kills it after anything else. Real runner processes; the worker here is the test process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from django.conf import settings
from django.db import connection

from project.cluster import ROOT
from search.models import Result, Status, WorkUnit
from search.services import runners
from search.services.searches import search_cancel
from search.services.units import unit_run
from tests.conftest import create_search, project_env, run_inline
from tests.services.test_units import SMALL, alive, break_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker() -> Iterator[None]:
    """This process acts as a django-q2 worker: it keeps a spare runner, as `post_spawn` makes it do."""
    kept = runners._keep_spare
    runners.keep_warm_runner()
    yield
    spare, runners._spare = runners._spare, None
    runners._keep_spare = kept
    if spare is not None:
        runners.kill_group(spare.proc)


def test_consecutive_units_reuse_one_runner_and_still_use_every_core(worker: None, settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 3  # SMALL has 3 candidates x 3 folds: three units
    settings.FANOUT_UNIT_SECONDS = 0  # kept as three (unit merging would make them one)
    search = run_inline(create_search(SMALL))
    assert search.status == Status.DONE
    units = list(search.units.filter(kind="cv").order_by("index"))
    assert len(units) == 3
    refit = search.units.get(kind="refit")  # the refit of the best candidate goes to the same warm runner
    assert len({u.runner_pid for u in [*units, refit]}) == 1  # one runner for all three units and the refit
    runner_pid = units[0].runner_pid
    assert runner_pid is not None and alive(runner_pid)  # kept as the spare for the next unit
    cores = joblib.cpu_count()  # what the runner is granted (CPU affinity and quotas included)
    for unit in units:  # every unit still fits in the pool's processes, never in the worker
        # one candidate x 3 folds per unit: 3 tasks, so at most 3 processes whatever the machine has
        assert unit.n_jobs_effective == cores and unit.processes_used == min(cores, 3)
        assert os.getpid() not in unit.worker_pids
        assert unit.threads["processes"], unit.threads  # each unit records the thread pools it ran with
    assert Result.objects.filter(search=search).count() == 9


def test_a_failed_unit_does_not_hand_its_runner_on(worker: None) -> None:
    broken = create_search(SMALL)
    break_dataset(broken)
    run_inline(broken)
    failed_runner = broken.units.get().runner_pid
    assert broken.status == Status.FAILED and failed_runner is not None
    assert not alive(failed_runner)  # an error ends the runner's group
    good = run_inline(create_search({**SMALL, "dataset": "wine"}))  # iris above was broken on purpose
    assert good.status == Status.DONE and good.units.get(kind="cv").runner_pid != failed_runner


# Data above joblib's max_nbytes (1 MB): X is 20000 x 20 float64 = 3.2 MB, so it reaches the loky workers as
# a memory map in a folder joblib names after the runner's pid.
BIG: dict[str, Any] = {
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0, "n_estimators": 200},
    "param_grid": {"max_features": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]},  # not a path-reuse chain: each fit alone
    "dataset": {"name": "make_classification", "options": {"n_samples": 20000, "n_features": 20}},
    "cv": 5,
}


def started(pid: int) -> float:
    """When process `pid` started (Unix time, to the second): /proc/<pid>/stat's start time after boot."""
    with open(f"/proc/{pid}/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[-1].split()[19])
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def memmap_folders(pid: int, since: float) -> list[Path]:
    """joblib's memory-map folders of process `pid` (`joblib_memmapping_folder_<pid>_…`) wherever they are:
    /dev/shm, the temporary directory, FANOUT_VAR_DIR, or up to two folders below one of them. Only those
    made since `since` (the process's start): /dev/shm may hold stale ones of an earlier process of that pid."""
    prefix = f"joblib_memmapping_folder_{pid}_"
    found: list[Path] = []

    def look(folder: Path, depth: int) -> None:
        try:  # other processes create and remove folders here meanwhile
            entries = [e for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(prefix):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_ctime >= since - 1:
                        found.append(Path(entry.path))
            elif depth < 2 and not entry.name.startswith("joblib_memmapping_folder_"):
                look(Path(entry.path), depth + 1)

    for root in {Path("/dev/shm"), Path(tempfile.gettempdir()), Path(settings.VAR_DIR)}:
        look(root, 0)
    return found


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_killed_runner_leaves_no_memory_mapped_data_behind() -> None:
    search = create_search(BIG)
    unit = search.units.get()
    outcome: list[str] = []

    def run() -> None:
        try:
            outcome.append(unit_run(unit_id=unit.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: WorkUnit.objects.get(pk=unit.pk).runner_pid is not None, 60, "the runner")
    runner_pid = WorkUnit.objects.get(pk=unit.pk).runner_pid
    assert runner_pid is not None
    since = started(runner_pid)
    wait_for(lambda: memmap_folders(runner_pid, since), 60, "joblib to memory-map the data")
    search_cancel(search=search)  # the runner's whole group is killed, loky's resource tracker with it
    thread.join(timeout=30)
    assert outcome == ["stopped"] and not alive(runner_pid)
    assert memmap_folders(runner_pid, since) == []


WORKER = """
import json, sys, time
import django
django.setup()
from search.engine.run import Job
from search.services import runners
runner = runners.runner_take(Job.from_dict(json.loads(sys.argv[1])))
print(runner.pid, flush=True)
time.sleep(600)
"""


def test_a_dead_workers_memory_maps_are_swept_when_a_worker_starts() -> None:
    """A worker SIGKILLed mid-unit: its runner dies with it (parent-death signal) and nobody removes the
    runner's memory maps. The next worker to start on the machine does."""
    job = {
        "steps": [["RandomForestClassifier", "sklearn.ensemble"]], "params": {"random_state": 0},
        "data": {"kind": "generator", "name": "make_classification", "options": BIG["dataset"]["options"]},
        "cv": {"n_splits": 5, "shuffle": False}, "scoring": None, "n_jobs": -1, "return_train_score": False,
        "cells": [[i, f, {"n_estimators": 200 + i}] for i in range(4) for f in range(5)], "path_reuse": False,
    }  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(job)], cwd=ROOT, env=project_env(), stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    runner_pid = int(worker.stdout.readline())
    since = started(runner_pid)
    wait_for(lambda: memmap_folders(runner_pid, since), 60, "joblib to memory-map the data")
    worker.kill()
    worker.wait()
    wait_for(lambda: not alive(runner_pid), 15, "the runner to die with its worker")
    assert memmap_folders(runner_pid, since)  # left behind: the resource tracker died with the runner's group
    kept = runners._keep_spare
    runners.keep_warm_runner()  # a worker starts (django-q2's post_spawn)
    try:
        assert memmap_folders(runner_pid, since) == []
    finally:
        spare, runners._spare = runners._spare, None
        runners._keep_spare = kept
        if spare is not None:
            runners.kill_group(spare.proc)

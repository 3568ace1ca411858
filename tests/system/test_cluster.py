"""A real `qcluster` on the embedded default (SQLite + ORM broker) runs searches on every core."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import re
import time
from pathlib import Path
from typing import Any

import joblib
import pytest

from search.engine.run import Job, RunInfo, run_job
from search.models import Result, Search, Status
from search.services.searches import plan_search, search_create
from tests.conftest import manage

# The cores a runner is granted here (what RunInfo records: joblib's count, CPU affinity and quotas included).
CORES = joblib.cpu_count()
# With path reuse a unit's tasks are its chains, one per (max_depth, fold): 40 → 80 trees. Enough depths that
# the search can fill every core (2 on a 2-core machine, as many as it takes on a larger one).
DEPTHS: list[int | None] = [None, *range(6, 6 + 2 * (max(2, math.ceil(CORES / 5)) - 1), 2)]
CPU_BOUND = {
    "name": "cpu-bound",
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": {"n_estimators": [40, 80], "max_depth": DEPTHS},
    "dataset": {"name": "make_classification", "options": {"n_samples": 1500, "n_features": 20}},
    "cv": 5,
}
needs_cores = pytest.mark.skipif(CORES < 2, reason="needs at least 2 cores to see parallelism")


def wait_finished(search: Search, timeout: float = 180) -> Search:
    deadline = time.monotonic() + timeout
    while not search.is_finished:
        assert time.monotonic() < deadline, f"search still {search.status} after {timeout} s"
        time.sleep(0.2)
        search.refresh_from_db()
    return search


@needs_cores
@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_a_search_through_a_real_qcluster_uses_every_core(qcluster: Any) -> None:
    search = search_create(plan=plan_search(CPU_BOUND))  # enqueued on commit
    wait_finished(search)
    assert search.status == Status.DONE, search.error
    unit = search.units.get(kind="cv")
    # The refit ran on the cluster too, as one more unit, with every core granted: the search's model.
    refit = search.units.get(kind="refit")
    assert refit.status == Status.DONE and refit.worker_pid is not None and refit.n_jobs_effective == CORES
    assert (
        search.refit_time is not None and search.model.size > 0 and search.model.card["candidate"] == search.best_index
    )
    assert len(DEPTHS) * 5 >= CORES  # the unit has a task for every core
    # The proof that joblib was not silently reduced to one process inside the daemonic worker:
    assert unit.n_jobs_effective == CORES
    assert unit.processes_used == CORES
    fit_pids = set(Result.objects.filter(search=search).values_list("pid", flat=True))
    assert len(fit_pids) == CORES and unit.worker_pid not in fit_pids
    assert search.cores_used == CORES
    assert Result.objects.filter(search=search).count() == search.n_fits == len(DEPTHS) * 2 * 5


@needs_cores
@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_runsearch_waits_for_the_cluster_and_prints_a_summary(qcluster: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps([CPU_BOUND, {**CPU_BOUND, "name": "second", "estimator": "ExtraTreesClassifier"}]))
    out = manage("runsearch", str(path))
    assert out.returncode == 0, out.stderr
    ids = [int(i) for i in re.findall(r"^search (\d+)$", out.stdout, re.M)]
    assert len(ids) == 2
    assert f"search {ids[0]} (cpu-bound): done" in out.stdout
    assert f"cores used {CORES}" in out.stdout
    assert "best score" in out.stdout and "Traceback" not in out.stderr
    assert set(Search.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.DONE}


def _run_in_daemon(job: dict[str, Any], out: Any) -> None:
    info: list[RunInfo] = []
    list(run_job(Job.from_dict(job), on_start=info.append))
    out.put((info[0].n_jobs_effective, sorted(info[0].worker_pids)))


@needs_cores
def test_fits_inside_a_daemonic_process_would_be_caught() -> None:
    """The negative control: run the same fits in a daemonic process, as a django-q2 worker is, and
    joblib silently uses one process. `processes_used == cores` above is what catches that."""
    job = {
        "steps": [["RandomForestClassifier", "sklearn.ensemble"]], "params": {"random_state": 0},
        "data": {"kind": "builtin", "name": "iris"}, "cv": {"n_splits": 3, "shuffle": False}, "scoring": None,
        "n_jobs": -1, "return_train_score": False, "cells": [[0, f, {"n_estimators": 20}] for f in range(3)],
    }  # fmt: skip
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_run_in_daemon, args=(job, out), daemon=True)
    proc.start()
    n_jobs_effective, pids = out.get(timeout=60)
    proc.join()
    assert n_jobs_effective == 1
    assert pids == [proc.pid]  # every fit ran in the daemonic process itself


@needs_cores
@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_runsearch_scaling_measures_each_core_count(qcluster: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**CPU_BOUND, "param_grid": {"n_estimators": [30, 60]}}))
    out = manage("runsearch", str(path), "--scaling")
    assert out.returncode == 0, out.stderr
    assert "speedup" in out.stdout and "efficiency" in out.stdout
    assert "processes  wall (s)  speedup  efficiency" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines() if re.match(r"^\s+\d+\s+\d+\.\d+\s+\d+\.\d+x", line)]
    assert [r[0] for r in rows] == [str(n) for n in range(1, CORES + 1)] and rows[0][2] == "1.00x"  # 1 .. every core
    assert "Amdahl serial fraction" in out.stdout

"""The runner's view of the machine: processes granted, thread limits, oversubscription warnings."""

import dataclasses
import json
import os
import subprocess
import sys
import time

import joblib
import pytest

from search.engine.cost import relative_cost
from search.engine.procs import processes
from search.engine.run import Job, run_info, run_job

CORES = joblib.cpu_count()  # what a runner is granted here: CPU affinity and quotas included, as RunInfo records
MACHINE = os.cpu_count() or CORES
# A worker pinned to fewer cores than the machine has is told so (nothing else is expected to warn).
AFFINITY = (
    []
    if CORES >= MACHINE
    else [f"this worker may use only {CORES} of the machine's {MACHINE} cores (CPU affinity or quota)"]
)


def job(n_jobs: int = -1, workers: int = 1) -> Job:
    return Job(
        steps=[("LogisticRegression", "sklearn.linear_model")], params={}, data={"kind": "builtin", "name": "iris"},
        cv={"n_splits": 3, "shuffle": False}, scoring=None, n_jobs=n_jobs, return_train_score=False,
        cells=[(0, f, {"C": 1.0}) for f in range(3)], cluster_workers=workers,
    )  # fmt: skip


def test_every_core_and_no_warning_by_default() -> None:
    info = run_info(job())
    assert info.n_jobs_effective == CORES and info.inner_threads == 1 and info.warnings == AFFINITY


def test_more_processes_than_cores_is_flagged() -> None:
    info = run_info(job(n_jobs=CORES * 2))
    assert info.n_jobs_effective == CORES  # clamped to the cores: more processes would only slow every fit
    assert info.warnings and info.warnings[0].startswith(
        f"oversubscribed: 1 worker(s) x {2 * CORES} processes = {2 * CORES} on {CORES} cores"
    )
    workers = run_info(job(n_jobs=-1, workers=2))  # two workers with every core each: half each would do
    expected = f"2 worker(s) x {CORES} processes = {2 * CORES} on {CORES} cores; use n_jobs={max(1, CORES // 2)}"
    assert expected in workers.warnings[0]


def test_sequential_job_may_use_every_core_for_blas() -> None:
    info = run_info(job(n_jobs=1))
    assert info.inner_threads == CORES and info.warnings == AFFINITY


def test_each_process_reports_its_thread_pools_once() -> None:
    results = list(run_job(job(n_jobs=1)))
    reports = [r.threads for r in results if r.threads is not None]
    assert len(reports) <= 1  # this test process may already have reported in an earlier test
    assert all(r.pid == os.getpid() for r in results)


def test_costs_order_big_models_first() -> None:
    small = relative_cost({"n_estimators": 50, "max_depth": 5})
    big = relative_cost({"n_estimators": 200, "max_depth": None})
    assert big > small
    assert relative_cost({"svc__C": 100.0}) > relative_cost({"svc__C": 0.1})
    assert relative_cost({"min_samples_split": 2}) > relative_cost({"min_samples_split": 10})
    assert relative_cost({"kernel": "rbf", "flag": True}) == 1.0


def test_more_processes_than_cores_are_never_started() -> None:
    """n_jobs above the cores (a spec may ask for up to FANOUT_MAX_N_JOBS) runs on the cores: the fits come from
    at most that many processes, and the unit records what was asked and what ran."""
    cells = [(c, c % 3, {"C": 0.5 + c}) for c in range(3 * CORES)]
    wide = dataclasses.replace(job(n_jobs=3 * CORES), cells=cells)
    out = subprocess.run(
        [sys.executable, "-m", "search.engine.runner"], input=json.dumps(wide.to_dict()) + "\n",
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    events = [json.loads(line) for line in out.stdout.splitlines()]
    fits = [fit for e in events if e["event"] == "fits" for fit in e["fits"]]
    assert len(fits) == 3 * CORES and len({e["pid"] for e in fits}) <= CORES
    start = next(e for e in events if e["event"] == "start")
    assert start["n_jobs_requested"] == 3 * CORES and start["n_jobs_effective"] == CORES, start


@pytest.mark.skipif(CORES < 2, reason="needs 2 cores")
def test_a_cold_runner_spreads_even_a_short_job_over_every_process() -> None:
    """Without the warm-up barrier, on a loaded machine the first pool process to start could do all of a
    short job while the others still import scikit-learn, and n_jobs=-1 silently ran on one core."""
    forest = [("RandomForestClassifier", "sklearn.ensemble")]
    cells = [(c, c % 3, {"max_depth": 2 + c}) for c in range(CORES)]  # ~0.1 s each: one task per process
    # one thread per fit (with two forests on two cores the schedule could build each one's trees in threads)
    tiny = dataclasses.replace(
        job(), steps=forest, params={"n_estimators": 60, "random_state": 0}, cells=cells, fit_threads=1
    )
    for _ in range(2):  # each time a new runner process, so a cold pool
        out = subprocess.run(
            [sys.executable, "-m", "search.engine.runner"], input=json.dumps(tiny.to_dict()) + "\n",
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        events = [json.loads(line) for line in out.stdout.splitlines()]
        fits = [fit for e in events if e["event"] == "fits" for fit in e["fits"]]
        assert len(fits) == CORES and len({e["pid"] for e in fits}) == CORES
        assert len(events[-1]["worker_pids"]) == CORES


def test_a_kept_runner_spreads_every_job_over_every_process_even_after_a_pool_process_died() -> None:
    """A runner kept from unit to unit skips the warm-up round while its pool is whole (docs/performance.md);
    a job after a pool process was killed warms a whole pool again, so no job runs on fewer processes."""
    forest = [("RandomForestClassifier", "sklearn.ensemble")]
    cells = [(c, c % 3, {"max_depth": 2 + c}) for c in range(CORES)]
    tiny = dataclasses.replace(
        job(), steps=forest, params={"n_estimators": 60, "random_state": 0}, cells=cells, fit_threads=1
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.engine.runner", "--warm"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def one_job() -> tuple[set[int], list[int]]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(tiny.to_dict()) + "\n")
        proc.stdin.flush()
        pids: set[int] = set()
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "fits":
                pids |= {fit["pid"] for fit in event["fits"]}
            if event["event"] in ("end", "error"):
                assert event["event"] == "end", event
                return pids, event["worker_pids"]
        raise AssertionError("the runner closed its output")

    try:
        seen = [one_job(), one_job()]  # the second on the warm pool, without a warm-up round
        if CORES > 1:
            dead = seen[-1][1][0]
            os.kill(dead, 9)  # one pool process dies between two jobs (killed, out of memory)
            deadline = time.monotonic() + 10
            while (p := processes().get(dead)) is not None and not p.zombie and time.monotonic() < deadline:
                time.sleep(0.01)
        seen.append(one_job())
    finally:
        proc.kill()
        proc.wait()
    for pids, worker_pids in seen:
        assert len(pids) == CORES and len(worker_pids) == CORES
    if CORES > 1:
        assert seen[0][1][0] not in seen[2][1]


def test_a_warmed_pool_keeps_its_imported_objects_out_of_the_collectors_scans() -> None:
    """Every pool process (and the runner itself) has frozen what its imports built, so a full collection no
    longer walks scikit-learn's and SciPy's objects between two fits (docs/performance.md, garbage collection)."""
    code = (
        "import gc, json, joblib\n"
        "from search.engine.run import warm_up\n"
        "warm_up()\n"
        "tasks = (joblib.delayed(gc.get_freeze_count)() for _ in range(4 * joblib.cpu_count()))\n"
        "counts = joblib.Parallel(n_jobs=-1)(tasks)\n"
        "print(json.dumps({'runner': gc.get_freeze_count(), 'pool': counts}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["runner"] > 50_000  # the modules of scikit-learn, SciPy and NumPy: about 120,000 objects here
    assert len(report["pool"]) == 4 * CORES and min(report["pool"]) > 50_000

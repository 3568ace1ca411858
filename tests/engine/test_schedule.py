"""engine.schedule: a unit's tasks for many cores, proven by simulation from measured fit costs, and threaded
forest fits that score exactly as GridSearchCV."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, ParameterGrid

from search.engine.cost import relative_cost
from search.engine.reuse import Chain, plan_chains
from search.engine.run import Job, run_job
from search.engine.schedule import (
    batch_sizes,
    chain_groups,
    evaluate,
    independent,
    plan_schedule,
    simulate,
    task_duration,
    unit_bounds,
)

COSTS = json.loads((Path(__file__).parent / "data" / "reference_grid_fit_costs.json").read_text())
GRID: dict[str, list[Any]] = COSTS["grid"]
STEPS = [("RandomForestClassifier", "sklearn.ensemble")]


def measured_cost(params: Any, fold: int) -> float:
    """Seconds of an independent fit: its trees times the per-tree cost measured for its cell."""
    for row in COSTS["per_tree"]:
        if (row["max_depth"], row["min_samples_split"], row["fold"]) == (
            params["max_depth"], params["min_samples_split"], fold,
        ):  # fmt: skip
            return float(row["seconds"]) * params["n_estimators"]
    raise KeyError(params)


def reference_chains() -> list[Chain]:
    cells = [(i, fold, p) for i, p in enumerate(ParameterGrid(GRID)) for fold in range(5)]
    return plan_chains(STEPS, {"random_state": 0}, cells, [1600] * 5)


def test_the_fixture_is_the_reference_grid_measured() -> None:
    assert len(COSTS["per_tree"]) == 6 * 5
    assert all(row["seconds"] > 0 for row in COSTS["per_tree"])
    assert len(reference_chains()) == 30  # 18 candidates x 5 folds = 90 fits grown as 30 chains


@pytest.mark.parametrize("cores", [16, 64])
def test_many_cores_stay_busy_with_path_reuse(cores: int) -> None:
    chains = reference_chains()
    plan = plan_schedule(chains, measured_cost, cores, threaded=True)
    assert plan.utilisation >= 0.9
    assert plan.efficiency >= 0.9  # busy with the chains' own trees, not with refitting what reuse saved
    # every fit is in exactly one task
    assert sorted((c, t.fold) for t in plan.tasks for c, _ in t.cells) == sorted(
        (c, ch.fold) for ch in chains for c, _ in ch.cells
    )
    # one fit per process (what joblib alone can do) caps the unit at the longest chain
    alone = plan_schedule(chains, measured_cost, cores, threaded=False)
    assert alone.utilisation < 0.9 if cores == 64 else True
    assert plan.makespan <= alone.makespan


@pytest.mark.parametrize("cores", [16, 64])
def test_the_runners_own_estimate_plans_as_well_when_measured(cores: int) -> None:
    """A runner plans with engine.cost's relative costs (it has no seconds, and no fold's own cost); the plan it
    picks, replayed with the measured costs, still keeps most cores busy (0.95 at 16 cores, 0.885 at 64, where
    16 slots x 4 threads pair 30 tasks whose measured costs differ by fold more than the estimate knows)."""
    chains = reference_chains()

    def estimate(params: Any, fold: int) -> float:
        return relative_cost({"random_state": 0, **params})

    chosen = plan_schedule(chains, estimate, cores, threaded=True)
    replayed = evaluate(chosen.tasks, measured_cost, chosen.threads, cores)
    assert replayed.utilisation >= 0.85


def test_relative_costs_follow_the_measured_ones() -> None:
    """engine.cost's ratios between the reference grid's forests are within 15 % of the measured ones."""
    measured: dict[tuple[Any, int], list[float]] = {}
    for row in COSTS["per_tree"]:
        measured.setdefault((row["max_depth"], row["min_samples_split"]), []).append(row["seconds"])
    base = sum(measured[(None, 2)]) / 5
    for (depth, split), seconds in measured.items():
        ratio = relative_cost({"max_depth": depth, "min_samples_split": split}) / relative_cost(
            {"max_depth": None, "min_samples_split": 2}
        )
        assert ratio == pytest.approx(sum(seconds) / 5 / base, rel=0.15), (depth, split)


def test_few_cores_keep_one_thread_per_fit_and_every_chain() -> None:
    for cores in (1, 2):
        plan = plan_schedule(reference_chains(), measured_cost, cores, threaded=True)
        assert plan.threads == 1 and plan.slots == cores and len(plan.tasks) == 30
        assert plan.utilisation >= 0.95


def test_independent_fits_never_beat_the_chains_by_the_estimate() -> None:
    chains = reference_chains()
    for cores in (2, 16, 64, 256):
        chained = plan_schedule(chains, measured_cost, cores, threaded=False)
        loose = plan_schedule(independent(chains), measured_cost, cores, threaded=False)
        assert chained.makespan <= loose.makespan
        assert chained.work < loose.work


def test_simulate_is_list_scheduling_in_order() -> None:
    assert simulate([3, 3, 2, 2, 2], 2) == 7  # 3+2+2 on one slot, 3+2 on the other
    assert simulate([5], 4) == 5
    assert simulate([1, 1, 1, 1], 1) == 4


def test_a_threaded_chain_builds_whole_trees_per_round() -> None:
    chain = Chain(0, ((0, {"n_estimators": 3}), (1, {"n_estimators": 10})), "n_estimators")

    def cost(params: Any, fold: int) -> float:
        return float(params["n_estimators"])

    assert task_duration(chain, cost, 1) == 10
    assert task_duration(chain, cost, 4) == 1 + 2  # 3 trees in one round, then 7 more in two


def test_threaded_forest_fits_score_as_gridsearchcv() -> None:
    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, random_state=1)
    grid = {"n_estimators": [5, 12], "max_depth": [None, 3]}
    cells = [(i, f, p) for i, p in enumerate(ParameterGrid(grid)) for f in range(3)]
    job = Job(
        steps=STEPS, params={"random_state": 0},
        data={"kind": "generator", "name": "make_classification",
              "options": {"n_samples": 300, "n_features": 8, "n_informative": 4, "random_state": 1}},
        cv={"n_splits": 3}, scoring=["accuracy", "neg_log_loss"], n_jobs=-1, return_train_score=True,
        cells=cells, fit_threads=3,
    )  # fmt: skip
    got = {(r.candidate, r.fold): r for r in run_job(job)}
    ref = GridSearchCV(
        RandomForestClassifier(random_state=0), grid, cv=3, scoring=["accuracy", "neg_log_loss"],
        refit=False, return_train_score=True,
    ).fit(X, y).cv_results_  # fmt: skip
    for i in range(4):
        for f in range(3):
            for m in ("accuracy", "neg_log_loss"):
                assert got[(i, f)].test_scores[m] == ref[f"split{f}_test_{m}"][i]
                train = got[(i, f)].train_scores
                assert train is not None and train[m] == ref[f"split{f}_train_{m}"][i]
    assert {r.cores for r in got.values()} == {3}
    assert np.isfinite([r.fit_time for r in got.values()]).all()


def test_batches_cover_every_task_once_and_shrink_to_one() -> None:
    for n, slots in [(2000, 2), (1000, 64), (31, 2), (5, 1), (0, 2)]:
        sizes = batch_sizes(n, slots)
        assert sum(sizes) == n
        assert sizes == sorted(sizes, reverse=True)
        assert not sizes or sizes[-1] == 1
    assert batch_sizes(31, 2) == [1] * 31  # few tasks: each streams on its own
    assert max(batch_sizes(2000, 2)) == 64 and len(batch_sizes(2000, 2)) < 200


def test_units_are_cut_by_cost_with_a_short_tail() -> None:
    costs = [relative_cost({"random_state": 0, **p}) for p in ParameterGrid(GRID)]  # 18 candidates
    ranges = unit_bounds(costs, 4)
    assert ranges[0][0] == 0 and ranges[-1][1] == 18
    assert all(a < b for a, b in ranges) and all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))
    sums = [sum(costs[a:b]) for a, b in ranges]
    by_count = [sum(costs[a:b]) for a, b in [(0, 5), (5, 10), (10, 15), (15, 18)]]  # equal counts, as before
    assert max(sums) / min(sums) < max(by_count) / min(by_count)
    tailed = unit_bounds([1.0] * 100, 6, tail=2)
    sizes = [b - a for a, b in tailed]
    assert sum(sizes) == 100 and sizes[-1] == sizes[-2] < sizes[0]
    assert unit_bounds([1.0, 1.0], 5) == [(0, 1), (1, 2)]
    assert unit_bounds([], 3) == []


def test_unit_cuts_keep_path_reuse_chains_whole() -> None:
    params = list(ParameterGrid(GRID))  # n_estimators varies fastest: chains are 3 neighbouring candidates
    costs = [relative_cost({"random_state": 0, **p}) for p in params]
    groups = chain_groups(STEPS, params)
    assert len(set(groups)) == 6
    ranges = unit_bounds(costs, 4, tail=2, groups=groups)
    assert all(a % 3 == 0 for a, _ in ranges) and len(ranges) == 4
    sums = [sum(costs[a:b]) for a, b in ranges]
    assert sums[-1] < sums[0] and sums[-2] < sums[0]  # the tail is short
    # no growth parameter: every candidate is its own group
    assert len(set(chain_groups([("SVC", "sklearn.svm")], [{"C": 1}, {"C": 1}]))) == 2


def _runner_on(cores: set[int], job: Job) -> list[dict[str, Any]]:
    """The runner's events for `job`, run pinned to `cores` (what `taskset -c` does; its pool inherits them)."""
    out = subprocess.run(
        [sys.executable, "-m", "search.engine.runner"], input=json.dumps(job.to_dict()) + "\n",
        capture_output=True, text=True, timeout=300, check=True, preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux only")
def test_pinned_to_one_core_and_to_two_the_same_scores_on_every_core_given() -> None:
    """Pinned to 1 core, then to 2 (or all there are): the unit uses exactly the cores it was given, with the
    same scores, and says when it was given fewer than the machine has."""
    allowed = sorted(os.sched_getaffinity(0))
    grid = {"n_estimators": [4, 8], "max_depth": [2, 4, None]}
    cells = [(i, f, p) for i, p in enumerate(ParameterGrid(grid)) for f in range(3)]
    job = Job(
        steps=STEPS, params={"random_state": 0}, data={"kind": "builtin", "name": "iris"}, cv={"n_splits": 3},
        scoring="accuracy", n_jobs=-1, return_train_score=False, cells=cells,
    )  # fmt: skip
    scores = []
    for given in ({allowed[0]}, set(allowed[:2])):
        events = _runner_on(given, job)
        start = next(e for e in events if e["event"] == "start")
        fits = [fit for e in events if e["event"] == "fits" for fit in e["fits"]]
        assert start["cpu_count"] == len(given) and start["n_jobs_effective"] == len(given)
        assert len({f["pid"] for f in fits}) * start["fit_threads"] <= len(given)
        assert events[-1]["event"] == "end" and len(fits) == len(cells)
        if len(given) < (os.cpu_count() or 1):
            assert any("may use only" in w for w in start["warnings"])
        scores.append({(f["candidate"], f["fold"]): f["test_scores"] for f in fits})
    assert scores[0] == scores[1]

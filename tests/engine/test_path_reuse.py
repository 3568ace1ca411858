"""Path reuse: warm-started chains give exactly GridSearchCV's scores for every allowed estimator, and
everything the proof does not cover is fitted independently. No database."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.model_selection import GridSearchCV, ParameterGrid

from search.engine import datasets, registry
from search.engine.fits import FitResult
from search.engine.reuse import PATH_REUSE, Chain, chain_blocker, fit_keys, plan_chains
from search.engine.run import Job, make_cv, run_job

CLASSIFICATION = {"n_samples": 240, "n_features": 6, "n_informative": 4, "n_classes": 3, "random_state": 0}
REGRESSION = {"n_samples": 240, "n_features": 6, "noise": 5.0, "random_state": 0}

# (estimator, grid of the other parameters, fixed parameters) for every estimator in the allow-list.
CASES: dict[str, tuple[dict[str, list[Any]], dict[str, Any]]] = {
    "RandomForestClassifier": ({"max_depth": [None, 3]}, {"random_state": 0}),
    "RandomForestRegressor": ({"max_features": [0.5, 1.0]}, {"random_state": 1, "max_samples": 0.7}),
    "ExtraTreesClassifier": ({"bootstrap": [False, True]}, {"random_state": 2, "class_weight": "balanced_subsample"}),
    "ExtraTreesRegressor": ({"min_samples_leaf": [1, 4]}, {"random_state": 3}),
    "GradientBoostingClassifier": ({"subsample": [1.0, 0.7]}, {"random_state": 0, "max_features": 0.5}),
    "GradientBoostingRegressor": ({"loss": ["squared_error", "huber"]}, {"random_state": 0, "subsample": 0.8}),
    "HistGradientBoostingClassifier": ({"max_depth": [None, 3]}, {"random_state": 0, "max_features": 0.5}),
    "HistGradientBoostingRegressor": ({"learning_rate": [0.1, 0.3]}, {"random_state": 5}),
    "BaggingClassifier": ({"max_features": [1.0, 0.6]}, {"random_state": 0}),
    "BaggingRegressor": ({"bootstrap_features": [False, True]}, {"random_state": 0}),
}


def job_for(name: str, grid: dict[str, list[Any]], fixed: dict[str, Any], **kw: Any) -> Job:
    classifier = registry.lookup(name).kind == "classifier"
    cells = [(i, f, p) for i, p in enumerate(ParameterGrid(grid)) for f in range(3)]
    return Job(
        steps=[(name, "sklearn.ensemble")], params=fixed,
        data={"kind": "generator", "name": "make_classification" if classifier else "make_regression",
              "options": CLASSIFICATION if classifier else REGRESSION},
        cv={"n_splits": 3, "shuffle": False},
        scoring=["accuracy", "neg_log_loss"] if classifier else ["r2", "neg_mean_absolute_error"],
        n_jobs=kw.get("n_jobs", -1), return_train_score=True, cells=cells,
    )  # fmt: skip


def reference(job: Job, grid: dict[str, list[Any]]) -> dict[str, Any]:
    data = datasets.generate(job.data["name"], job.data["options"])
    est = registry.build(tuple(job.steps), job.params)
    gs = GridSearchCV(est, grid, scoring=job.scoring, cv=make_cv(job.cv, data.y, is_classifier(est)),
                      refit=False, return_train_score=True, n_jobs=1)  # fmt: skip
    return dict(gs.fit(data.X, data.y).cv_results_)


def assert_equal_to_grid_search(results: list[FitResult], job: Job, grid: dict[str, list[Any]]) -> None:
    expected = reference(job, grid)
    n_candidates = len(expected["params"])
    assert sorted((r.candidate, r.fold) for r in results) == [(c, f) for c in range(n_candidates) for f in range(3)]
    assert all(r.error == "" for r in results)
    metrics = job.scoring if isinstance(job.scoring, list) else ["score"]
    for m in metrics:
        for kind in ("test", "train"):
            got = np.full((n_candidates, 3), np.nan)
            for r in results:
                scores = r.test_scores if kind == "test" else r.train_scores
                assert scores is not None
                got[r.candidate, r.fold] = scores[m]
            for fold in range(3):
                key = f"split{fold}_{kind}_{m}"
                assert np.array_equal(got[:, fold], expected[key]), (key, got[:, fold], expected[key])


@pytest.mark.parametrize("name", sorted(PATH_REUSE))
def test_chained_fits_equal_independent_fits_exactly(name: str) -> None:
    other, fixed = CASES[name]
    growth = PATH_REUSE[name]
    grid = {growth: [3, 7, 12], **other}
    job = job_for(name, grid, fixed)
    results = list(run_job(job))
    assert_equal_to_grid_search(results, job, grid)
    # Really chained: per (other params, fold) one fit from scratch, the two larger sizes grown from it.
    reused = [r for r in results if r.path_reused]
    assert len(reused) == 2 * 2 * 3
    assert {r.candidate for r in reused} == {i for i, p in enumerate(ParameterGrid(grid)) if p[growth] != 3}


def test_every_estimator_in_the_allow_list_is_proven_here() -> None:
    assert set(CASES) == set(PATH_REUSE)


def test_a_grid_in_any_order_and_with_repeats_still_gives_every_fit_once() -> None:
    grid = [{"n_estimators": [9, 4, 9, 2], "max_depth": [2, None]}]
    job = job_for("RandomForestClassifier", {}, {"random_state": 0}, n_jobs=1)
    cells = [(i, f, p) for i, p in enumerate(ParameterGrid(grid)) for f in range(3)]
    job = Job(**{**job.__dict__, "cells": cells})
    results = list(run_job(job))
    data = datasets.generate(job.data["name"], job.data["options"])
    est = registry.build(tuple(job.steps), job.params)
    gs = GridSearchCV(est, grid, scoring=job.scoring, cv=3, refit=False, return_train_score=True).fit(data.X, data.y)
    for r in results:
        assert r.test_scores["accuracy"] == gs.cv_results_[f"split{r.fold}_test_accuracy"][r.candidate]
    assert len(results) == 24 and len({(r.candidate, r.fold) for r in results}) == 24
    assert sum(r.path_reused for r in results) == 2 * 3 * 2  # 2 → 4 → 9 per (max_depth, fold); the second 9 alone


# ---------------------------------------------------------------------------------------------
# Fallbacks: independent fits wherever the proof does not hold
# ---------------------------------------------------------------------------------------------

RF = [("RandomForestClassifier", "sklearn.ensemble")]


def cells_of(grid: dict[str, list[Any]], folds: int = 2) -> list[tuple[int, int, dict[str, Any]]]:
    return [(i, f, p) for i, p in enumerate(ParameterGrid(grid)) for f in range(folds)]


def chained(chains: list[Chain]) -> int:
    return sum(c.fits_saved for c in chains)


@pytest.mark.parametrize(
    ("steps", "fixed", "grid", "why"),
    [
        (RF, {}, {"n_estimators": [5, 10]}, "random_state is not an integer"),
        (RF, {"random_state": None}, {"n_estimators": [5, 10]}, "random_state is not an integer"),
        (RF, {"random_state": True}, {"n_estimators": [5, 10]}, "random_state is not an integer"),
        (RF, {"random_state": 0}, {"n_estimators": [5, 10], "warm_start": [False]}, "warm_start is set"),
        (RF, {"random_state": 0, "warm_start": True}, {"n_estimators": [5, 10]}, "warm_start is set"),
        ([("StandardScaler", "sklearn.preprocessing"), ("RandomForestClassifier", "sklearn.ensemble")],
         {"randomforestclassifier__random_state": 0}, {"randomforestclassifier__n_estimators": [5, 10]},
         "a pipeline"),
        ([("SGDClassifier", "sklearn.linear_model")], {"random_state": 0}, {"max_iter": [5, 10]}, "not proven"),
        ([("LogisticRegression", "sklearn.linear_model")], {}, {"max_iter": [5, 10]}, "not proven"),
        ([("GradientBoostingClassifier", "sklearn.ensemble")], {"random_state": 0, "n_iter_no_change": 2},
         {"n_estimators": [5, 10]}, "early stopping"),
        ([("HistGradientBoostingRegressor", "sklearn.ensemble")], {"random_state": 0, "early_stopping": True},
         {"max_iter": [5, 10]}, "early stopping"),
        ([("BaggingClassifier", "sklearn.ensemble")], {"random_state": 0, "oob_score": True},
         {"n_estimators": [5, 10]}, "oob_score"),
    ],
)  # fmt: skip
def test_unproven_cases_are_fitted_independently(
    steps: list[tuple[str, str]], fixed: dict[str, Any], grid: dict[str, list[Any]], why: str
) -> None:
    cells = cells_of(grid)
    chains = plan_chains(steps, fixed, cells, [100, 100])
    assert chained(chains) == 0 and all(len(c.cells) == 1 and c.param is None for c in chains)
    assert sorted((cand, c.fold) for c in chains for cand, _ in c.cells) == sorted((c, f) for c, f, _ in cells)
    blocker = chain_blocker(steps, {**fixed, **cells[0][2]}, 100)
    assert blocker is not None and why in blocker


def test_hist_gradient_boosting_auto_early_stopping_depends_on_the_training_rows() -> None:
    steps = [("HistGradientBoostingClassifier", "sklearn.ensemble")]
    cells = cells_of({"max_iter": [5, 10]}, folds=1)
    assert chained(plan_chains(steps, {"random_state": 0}, cells, [10_000])) == 1
    assert chained(plan_chains(steps, {"random_state": 0}, cells, [10_001])) == 0  # "auto" turns it on
    assert chained(plan_chains(steps, {"random_state": 0, "early_stopping": False}, cells, [10_001])) == 1


def test_chains_only_join_cells_that_differ_in_the_growing_parameter() -> None:
    grid: dict[str, list[Any]] = {"n_estimators": [50, 100, 200, 400], "max_depth": [None, 5], "random_state": [0, 1]}
    chains = plan_chains(RF, {}, cells_of(grid, folds=5), [80] * 5)
    assert len(chains) == 2 * 2 * 5 and chained(chains) == 3 * 2 * 2 * 5
    for chain in chains:
        sizes = [p["n_estimators"] for _, p in chain.cells]
        assert sizes == [50, 100, 200, 400]
        rest = {(p["max_depth"], p["random_state"]) for _, p in chain.cells}
        assert len(rest) == 1
    # the growing parameter fixed (not in the grid): nothing to chain
    fixed_size = plan_chains(RF, {"random_state": 0, "n_estimators": 10}, cells_of({"max_depth": [1, 2]}), [80] * 2)
    assert chained(fixed_size) == 0


def test_a_failure_inside_a_chain_leaves_the_rest_to_independent_fits() -> None:
    # make_regression has y < 0, which criterion="poisson" refuses
    grid: dict[str, list[Any]] = {"n_estimators": [2, 4], "criterion": ["squared_error", "poisson"]}
    job = job_for("RandomForestRegressor", grid, {"random_state": 0}, n_jobs=1)
    results = {(r.candidate, r.fold): r for r in run_job(job)}
    assert len(results) == 12
    failed = [r for r in results.values() if r.error]
    assert len(failed) == 6 and not any(r.path_reused for r in failed)
    assert all(r.test_scores["r2"] is None and "negative" in r.error for r in failed)
    assert sum(r.path_reused for r in results.values()) == 3  # the squared_error chains still ran


# ---------------------------------------------------------------------------------------------
# Fit keys
# ---------------------------------------------------------------------------------------------


def keyed_job(**changes: Any) -> dict[str, Any]:
    job = job_for("RandomForestClassifier", {"n_estimators": [3, 7]}, {"random_state": 0}).to_dict()
    job["data"] = {**job["data"], "key": "abc"}
    for k, v in changes.items():
        job[k] = v
    return job


def test_fit_keys_ignore_how_fits_run_but_not_what_they_compute() -> None:
    keys = fit_keys(keyed_job())
    assert len(set(keys.values())) == len(keys) == 6  # one per (candidate, fold)
    assert fit_keys(keyed_job(n_jobs=1, cluster_workers=3)) == keys
    assert fit_keys(keyed_job(cells=list(reversed(keyed_job()["cells"])))) == keys
    for change in (
        {"params": {"random_state": 1}},
        {"cv": {"n_splits": 3, "shuffle": True, "random_state": 0}},
        {"scoring": "accuracy"},
        {"return_train_score": False},
        {"subsample": {"fraction": 0.5, "random_state": 0}},
        {"data": {"kind": "generator", "key": "abd"}},
        {"steps": [["ExtraTreesClassifier", "sklearn.ensemble"]]},
    ):
        other = fit_keys(keyed_job(**change))
        assert not set(other.values()) & set(keys.values()), change
    # fixed and grid parameters are one set: where a value comes from does not matter
    moved = keyed_job(params={}, cells=[[c, f, {**p, "random_state": 0}] for c, f, p in keyed_job()["cells"]])
    assert fit_keys(moved) == keys


def test_no_data_key_no_fit_keys() -> None:
    assert fit_keys(job_for("RandomForestClassifier", {"n_estimators": [3]}, {}).to_dict()) == {}

"""Oracle: for the same estimator, grid, data, CV and scoring, exported results equal GridSearchCV's.

Each spec goes the whole way: validated, stored, split into units, fitted in the isolated runner
process with joblib, streamed into the database, aggregated, exported as JSON by `exportsearch`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from sklearn import datasets as skd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from tests.conftest import create_search, run_inline

pytestmark = pytest.mark.django_db


def exported(search_id: int) -> dict[str, Any]:
    out = io.StringIO()
    call_command("exportsearch", search_id, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def assert_same_cv_results(ours: dict[str, list[Any]], theirs: dict[str, Any]) -> None:
    assert set(ours) == set(theirs)
    assert ours["params"] == theirs["params"]  # same candidates, same order
    for key, expected in theirs.items():
        if key == "params":
            continue
        got = ours[key]
        if key.startswith("param_"):
            mask = np.ma.getmaskarray(expected)
            assert [None if m else v for v, m in zip(expected.data.tolist(), mask, strict=True)] == got, key
        elif key.startswith("rank_"):
            assert got == expected.tolist(), key
        elif key.endswith("_time"):
            assert len(got) == len(expected)  # timings are measured, not reproduced
        else:  # split scores, means and stds: bit-for-bit, NaN where scikit-learn has NaN
            as_float = np.array([np.nan if v is None else v for v in got], dtype=np.float64)
            np.testing.assert_allclose(as_float, expected, rtol=0, atol=1e-12, equal_nan=True, err_msg=key)
            assert np.array_equal(as_float, expected, equal_nan=True), key


def run_and_compare(spec: dict[str, Any], estimator: Any, X: Any, y: Any, **gs_kwargs: Any) -> dict[str, Any]:
    search = run_inline(create_search(spec))
    assert search.status == "done", search.error
    payload = exported(search.pk)
    reference = GridSearchCV(estimator, refit=False, n_jobs=1, **gs_kwargs).fit(X, y)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    return payload


def test_classifier_random_forest() -> None:
    X, y = skd.make_classification(n_samples=300, n_features=8, random_state=0)
    grid = {"n_estimators": [10, 30], "max_depth": [None, 3]}
    spec = {
        "estimator": "RandomForestClassifier", "params": {"random_state": 0}, "param_grid": grid,
        "dataset": {"name": "make_classification", "options": {"n_samples": 300, "n_features": 8, "random_state": 0}},
        "cv": 5, "scoring": "accuracy",
    }  # fmt: skip
    payload = run_and_compare(
        spec, RandomForestClassifier(random_state=0), X, y, param_grid=grid, cv=5, scoring="accuracy"
    )
    search = payload["search"]
    assert search["best_params"] == payload["cv_results"]["params"][payload["cv_results"]["rank_test_score"].index(1)]


def test_regressor_with_default_score() -> None:
    X, y = skd.load_diabetes(return_X_y=True)
    grid = {"alpha": [0.01, 0.1, 1.0, 10.0]}
    spec = {"estimator": "Ridge", "param_grid": grid, "dataset": {"name": "diabetes"}, "cv": 4}
    run_and_compare(spec, Ridge(), X, y, param_grid=grid, cv=4)


def test_two_step_pipeline() -> None:
    X, y = skd.load_breast_cancer(return_X_y=True)
    grid = {"svc__C": [0.1, 1, 10], "svc__kernel": ["linear", "rbf"]}
    spec = {"estimator": ["StandardScaler", "SVC"], "param_grid": grid, "dataset": "breast_cancer", "cv": 3}
    run_and_compare(spec, make_pipeline(StandardScaler(), SVC()), X, y, param_grid=grid, cv=3)


def test_two_metrics_at_once() -> None:
    X, y = skd.load_wine(return_X_y=True)
    grid = {"max_depth": [1, 2, 4, None], "criterion": ["gini", "entropy"]}
    scoring = ["accuracy", "f1_macro"]
    spec = {
        "estimator": "DecisionTreeClassifier", "params": {"random_state": 0}, "param_grid": grid,
        "dataset": {"name": "wine"}, "scoring": scoring, "refit": "f1_macro",
    }  # fmt: skip
    payload = run_and_compare(
        spec, DecisionTreeClassifier(random_state=0), X, y, param_grid=grid, cv=5, scoring=scoring
    )
    results = payload["cv_results"]
    assert payload["search"]["best_index"] == results["rank_test_f1_macro"].index(1)


def test_list_of_dicts_grid() -> None:
    X, y = skd.load_iris(return_X_y=True)
    grid = [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "C": [1, 10], "gamma": [0.01, 0.1]}]
    spec = {"estimator": "SVC", "param_grid": grid, "dataset": "iris", "cv": 5}
    payload = run_and_compare(spec, SVC(), X, y, param_grid=grid, cv=5)
    assert payload["cv_results"]["param_gamma"][:2] == [None, None]  # masked in scikit-learn


def test_csv_data_set(tmp_path: Path) -> None:
    X, y = skd.make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0, random_state=3)
    path = tmp_path / "points.csv"
    header = "f0,f1,label,f2,f3"  # the target column need not be last
    rows = [
        ",".join([repr(float(r[0])), repr(float(r[1])), str(t), repr(float(r[2])), repr(float(r[3]))])
        for r, t in zip(X, y, strict=True)
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    grid = {"n_neighbors": [1, 5, 15], "weights": ["uniform", "distance"]}
    spec = {"estimator": "KNeighborsClassifier", "param_grid": grid, "dataset": {"csv": str(path), "target": "label"}}
    loaded = np.loadtxt(path, delimiter=",", skiprows=1)  # an independent reader
    X_ref, y_ref = loaded[:, [0, 1, 3, 4]], loaded[:, 2].astype(int)
    run_and_compare(spec, KNeighborsClassifier(), X_ref, y_ref, param_grid=grid, cv=5)


def test_shuffled_cv_generator_regression_with_train_scores() -> None:
    options = {"n_samples": 200, "n_features": 5, "noise": 3.0, "random_state": 1}
    X, y = skd.make_regression(**options)
    grid = {"n_estimators": [5, 10], "max_features": [0.5, 1.0]}
    spec = {
        "estimator": "RandomForestRegressor", "params": {"random_state": 0}, "param_grid": grid,
        "dataset": {"name": "make_regression", "options": options},
        "cv": {"n_splits": 4, "shuffle": True, "random_state": 7},
        "scoring": ["r2", "neg_mean_absolute_error"], "return_train_score": True,
    }  # fmt: skip
    run_and_compare(
        spec, RandomForestRegressor(random_state=0), X, y, param_grid=grid,
        cv=KFold(4, shuffle=True, random_state=7), scoring=["r2", "neg_mean_absolute_error"],
        return_train_score=True,
    )  # fmt: skip


def test_failing_fits_are_nan_like_error_score_nan() -> None:
    X, y = skd.load_iris(return_X_y=True)
    grid = {"solver": ["lbfgs", "liblinear"], "C": [0.5, 1.0]}  # liblinear refuses multiclass
    spec = {"estimator": "LogisticRegression", "param_grid": grid, "dataset": "iris", "cv": 3}
    with pytest.warns(UserWarning):
        payload = run_and_compare(spec, LogisticRegression(), X, y, param_grid=grid, cv=3)
    assert payload["search"]["n_fits_failed"] == 6
    assert payload["cv_results"]["mean_test_score"][1] is None
    assert payload["cv_results"]["rank_test_score"][1] == 3  # NaN ranks last, tied, as in scikit-learn
    assert payload["search"]["status"] == "done"


def test_path_reuse_of_a_forest_gives_grid_search_scores() -> None:
    options = {"n_samples": 300, "n_features": 8, "random_state": 0}
    X, y = skd.make_classification(**options)
    grid = {"n_estimators": [5, 10, 20, 40], "max_features": ["sqrt", 0.8]}
    spec = {
        "estimator": "RandomForestClassifier", "params": {"random_state": 0}, "param_grid": grid,
        "dataset": {"name": "make_classification", "options": options}, "cv": 5,
        "scoring": ["accuracy", "neg_log_loss"], "return_train_score": True,
    }  # fmt: skip
    payload = run_and_compare(
        spec, RandomForestClassifier(random_state=0), X, y, param_grid=grid, cv=5,
        scoring=["accuracy", "neg_log_loss"], return_train_score=True,
    )  # fmt: skip
    assert payload["search"]["fits_saved"] == 3 * 2 * 5  # 5 trees fitted, 10, 20 and 40 grown from them


def test_path_reuse_of_gradient_boosting_gives_grid_search_scores() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = skd.load_diabetes(return_X_y=True)
    grid = {"n_estimators": [10, 30], "subsample": [1.0, 0.7]}
    spec = {
        "estimator": "GradientBoostingRegressor", "params": {"random_state": 0, "max_features": 0.5},
        "param_grid": grid, "dataset": "diabetes", "cv": {"n_splits": 3, "shuffle": True, "random_state": 0},
    }  # fmt: skip
    payload = run_and_compare(
        spec, GradientBoostingRegressor(random_state=0, max_features=0.5), X, y, param_grid=grid,
        cv=KFold(3, shuffle=True, random_state=0),
    )  # fmt: skip
    assert payload["search"]["fits_saved"] == 2 * 3

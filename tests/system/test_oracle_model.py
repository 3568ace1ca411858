"""Oracle: the model a search hands back is scikit-learn's `best_estimator_`, and its held-out scores are
scikit-learn's scorers on the same split.

Each search goes the whole way: validated, stored, its fits run in runner processes, aggregated, the best
candidate refitted by one more work unit, the model kept as a skops file, written out by `exportmodel`, loaded
the way the README says, and used by `predict` on a CSV file. The reference is `train_test_split` followed by
`GridSearchCV(…, refit=…)` (or `HalvingGridSearchCV`) fitted on the training part.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio  # type: ignore[import-untyped]
from django.core.management import CommandError, call_command
from sklearn import datasets as skd
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestRegressor
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from search.models import FittedModel, Search
from tests.conftest import create_search, run_inline
from tests.system.test_oracle import assert_same_cv_results, exported

pytestmark = pytest.mark.django_db


def downloaded(search: Search, tmp_path: Path) -> BaseEstimator:
    """The model as a user gets it: `exportmodel` writes the skops file, skops loads it after listing its types."""
    path = tmp_path / f"search-{search.pk}.skops"
    call_command("exportmodel", search.pk, "-o", str(path), stdout=io.StringIO())
    untrusted = sio.get_untrusted_types(file=path)
    assert all(name.startswith("sklearn.") for name in untrusted), untrusted
    return sio.load(path, trusted=untrusted)


def flat_params(estimator: BaseEstimator) -> dict[str, Any]:
    """Every parameter value, nested steps' included, without the step objects themselves."""
    return {k: v for k, v in estimator.get_params(deep=True).items() if not isinstance(v, (BaseEstimator, list))}


def write_csv(path: Path, names: list[str], X: np.ndarray, y: np.ndarray | None = None, target: str = "y") -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*names, target] if y is not None else names)
        for i, row in enumerate(X):
            cells = [repr(float(v)) for v in row]
            writer.writerow([*cells, y[i].item()] if y is not None else cells)
    return path


def predicted(search: Search, data: Path, tmp_path: Path) -> dict[str, list[str]]:
    """`manage.py predict` on a CSV file: its output columns."""
    out = tmp_path / "predictions.csv"
    call_command("predict", search.pk, str(data), "-o", str(out), stdout=io.StringIO())
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    return {name: [row[j] for row in rows[1:]] for j, name in enumerate(rows[0])}


def assert_same_search_and_model(
    search: Search, payload: dict[str, Any], reference: Any, X_test: Any, tmp_path: Path
) -> BaseEstimator:
    """The search's CV results and best index are the reference search's (fitted on the training part only),
    and its downloaded model is the reference's `best_estimator_`: parameters, predictions, probabilities."""
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["best_index"] == reference.best_index_
    model = downloaded(search, tmp_path)
    best = reference.best_estimator_
    assert flat_params(model) == flat_params(best)
    assert np.array_equal(model.predict(X_test), best.predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), best.predict_proba(X_test), rtol=0, atol=1e-12)
    return model


def assert_holdout_scores(payload: dict[str, Any], reference: BaseEstimator, X_test: Any, y_test: Any,
                          scoring: list[str] | None) -> None:  # fmt: skip
    holdout = payload["search"]["holdout"]
    assert holdout["n_test"] == len(y_test)
    names = scoring or ["score"]
    assert set(holdout["scores"]) == set(names)
    for name in names:
        scorer = get_scorer(name) if scoring else check_scoring(reference)
        expected = scorer(reference, X_test, y_test)
        assert abs(holdout["scores"][name] - expected) <= 1e-12, (name, holdout["scores"][name], expected)


def test_classifier_pipeline_two_scorers_refit_by_name(tmp_path: Path) -> None:
    X, y = skd.load_wine(return_X_y=True)
    names = list(skd.load_wine().feature_names)
    grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
    scoring = ["accuracy", "f1_macro"]
    holdout = {"test_size": 0.3, "random_state": 3, "stratify": True}
    spec = {
        "estimator": ["StandardScaler", "LogisticRegression"], "param_grid": grid, "dataset": "wine", "cv": 4,
        "scoring": scoring, "refit": "f1_macro", "holdout": holdout,
    }  # fmt: skip
    search = run_inline(create_search(spec))
    assert search.status == "done" and not search.refit_error, (search.error, search.refit_error)

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=3, stratify=y)
    gs = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), grid, cv=4, scoring=scoring,
                      refit="f1_macro").fit(X_train, y_train)  # fmt: skip
    payload = exported(search.pk)
    model = assert_same_search_and_model(search, payload, gs, X_test, tmp_path)  # CV saw the training part only
    assert_holdout_scores(payload, gs.best_estimator_, X_test, y_test, scoring)

    s = payload["search"]
    assert s["refit"] == "f1_macro" and s["refit_time"] > 0 and s["refit_error"] is None
    assert s["holdout"] | {"scores": None} == {
        **holdout,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "scores": None,
    }
    card = s["model"]
    assert card["params"]["logisticregression__C"] == gs.best_params_["logisticregression__C"]
    assert card["dataset"]["feature_names"] == names and card["classes"] == [0, 1, 2]
    assert card["holdout"]["scores"] == s["holdout"]["scores"] and card["n_train"] == len(y_train)
    assert card["size"] == FittedModel.objects.get(search=search).size > 0
    assert {"scikit-learn", "numpy", "skops", "python"} <= set(card["versions"])

    # The same through `predict` on a CSV file of the held-out rows (with its target column, ignored).
    columns = predicted(search, write_csv(tmp_path / "held-out.csv", names, X_test, y_test, "target"), tmp_path)
    assert list(columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert np.array_equal(np.array(columns["prediction"], dtype=np.int64), gs.best_estimator_.predict(X_test))
    proba = np.array([[float(v) for v in columns[f"proba_{c}"]] for c in (0, 1, 2)]).T
    np.testing.assert_allclose(proba, gs.best_estimator_.predict_proba(X_test), rtol=0, atol=1e-12)
    assert np.array_equal(proba, model.predict_proba(X_test))  # written at full precision


def test_regressor_on_a_csv_data_set(tmp_path: Path) -> None:
    X, y = skd.make_regression(n_samples=160, n_features=5, noise=5.0, random_state=1)
    names = [f"f{i}" for i in range(5)]
    data = write_csv(tmp_path / "train.csv", names, X, y, "y")
    grid = {"n_estimators": [5, 15], "max_depth": [3, None]}
    spec = {
        "estimator": "RandomForestRegressor", "params": {"random_state": 0}, "param_grid": grid, "cv": 3,
        "dataset": {"csv": str(data), "target": "y"}, "holdout": {"test_size": 40, "random_state": 7},
    }  # fmt: skip
    search = run_inline(create_search(spec))
    assert search.status == "done" and not search.refit_error, (search.error, search.refit_error)

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=40, random_state=7)
    gs = GridSearchCV(RandomForestRegressor(random_state=0), grid, cv=3).fit(X_train, y_train)
    payload = exported(search.pk)
    assert_same_cv_results(payload["cv_results"], gs.cv_results_)
    model = downloaded(search, tmp_path)
    assert np.array_equal(model.predict(X_test), gs.best_estimator_.predict(X_test))
    assert_holdout_scores(payload, gs.best_estimator_, X_test, y_test, None)
    assert payload["search"]["refit"] is True and payload["search"]["model"]["dataset"]["target"] == "y"

    columns = predicted(search, write_csv(tmp_path / "new.csv", names, X_test), tmp_path)
    assert list(columns) == ["prediction"]
    assert np.array_equal(np.array([float(v) for v in columns["prediction"]]), gs.best_estimator_.predict(X_test))


def test_halving_refits_on_the_whole_training_part(tmp_path: Path) -> None:
    X, y = skd.load_breast_cancer(return_X_y=True)
    grid = {"max_depth": [1, 2, 3, 5, None], "min_samples_leaf": [1, 5, 20]}
    spec = {
        "estimator": "DecisionTreeClassifier", "params": {"random_state": 0}, "param_grid": grid, "cv": 3,
        "dataset": "breast_cancer", "strategy": "halving", "random_state": 2, "halving": {"factor": 2},
        "holdout": {"test_size": 0.2, "random_state": 5, "stratify": True},
    }  # fmt: skip
    search = run_inline(create_search(spec))
    assert search.status == "done" and not search.refit_error, (search.error, search.refit_error)

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=5, stratify=y)
    hs = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0), grid, cv=3, factor=2, random_state=2, return_train_score=False
    )
    hs.fit(X_train, y_train)
    payload = exported(search.pk)
    assert_same_search_and_model(search, payload, hs, X_test, tmp_path)
    assert_holdout_scores(payload, hs.best_estimator_, X_test, y_test, None)
    assert payload["search"]["model"]["n_train"] == len(y_train)  # every training row, not the last round's

    names = list(skd.load_breast_cancer().feature_names)
    columns = predicted(search, write_csv(tmp_path / "held-out.csv", names, X_test), tmp_path)
    assert np.array_equal(np.array(columns["prediction"], dtype=np.int64), hs.best_estimator_.predict(X_test))
    proba = np.array([[float(v) for v in columns[f"proba_{c}"]] for c in (0, 1)]).T
    np.testing.assert_allclose(proba, hs.best_estimator_.predict_proba(X_test), rtol=0, atol=1e-12)


def test_refit_false_stores_no_model_and_exportmodel_says_why(tmp_path: Path) -> None:
    spec = {"estimator": "SVC", "param_grid": {"C": [1, 10]}, "dataset": "iris", "cv": 3, "refit": False}
    search = run_inline(create_search(spec))
    assert search.status == "done" and not FittedModel.objects.exists()
    assert not search.units.filter(kind="refit").exists()
    payload = exported(search.pk)
    assert payload["search"]["refit"] is False and payload["search"]["model"] is None
    assert payload["search"]["refit_time"] is None
    with pytest.raises(CommandError) as raised:
        call_command("exportmodel", search.pk, "-o", str(tmp_path / "m.skops"))
    assert raised.value.returncode == 2 and "refit: false" in str(raised.value)
    assert not (tmp_path / "m.skops").exists()


def test_a_failed_refit_is_reported_and_keeps_the_cv_results(tmp_path: Path, monkeypatch: Any) -> None:
    """The refit's data file turns unreadable after the last fit: the search is done with every CV result, says
    why the refit failed, and has no model."""
    from search.services import units

    # the refit as its own message would run it (not at once by the worker that ended the last CV unit), so the
    # data can break in between
    monkeypatch.setattr(units, "refit_now", lambda *, after: None)
    X, y = skd.load_iris(return_X_y=True)
    data = write_csv(tmp_path / "iris.csv", ["a", "b", "c", "d"], X, y, "y")
    spec = {"estimator": "SVC", "param_grid": {"C": [1, 10]}, "dataset": {"csv": str(data), "target": "y"}, "cv": 3}
    search = create_search(spec)
    for unit in search.units.all():
        from search.services.units import unit_run

        unit_run(unit_id=unit.pk)
    refit = search.units.get(kind="refit")
    Path(search.dataset.local_path() or "").write_text("not,a\ncsv file with the target\n")
    unit_run(unit_id=refit.pk)
    search.refresh_from_db()
    assert search.status == "done" and search.n_fits_done == search.n_fits == 6
    assert search.refit_error.startswith("the refit failed: ") and "target column 'y'" in search.refit_error
    assert not FittedModel.objects.exists()
    payload = exported(search.pk)
    assert payload["cv_results"] is not None and payload["search"]["refit_error"] == search.refit_error
    with pytest.raises(CommandError) as raised:
        call_command("exportmodel", search.pk, "-o", str(tmp_path / "m.skops"))
    assert raised.value.returncode == 2 and "the refit failed" in str(raised.value)
    assert json.loads(json.dumps(payload))  # the export stays valid JSON

"""Oracle for the user's own folds: explicit splits and GroupKFold over an uploaded .npz's groups give exactly
`GridSearchCV(cv=<the same splits>)`'s and `GridSearchCV(cv=GroupKFold(k)).fit(X, y, groups=groups)`'s
`cv_results_` (and HalvingGridSearchCV's), through the runner process, the database and the export."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from sklearn import datasets as skd
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, HalvingGridSearchCV, KFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from search.models import Dataset, Result
from search.services.datasets import dataset_upload_file
from search.services.searches import search_rerun
from tests.conftest import create_search, run_inline
from tests.system.test_oracle import assert_same_cv_results, exported, run_and_compare

pytestmark = pytest.mark.django_db


def npz_bytes(**arrays: Any) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def upload(owner: User, **arrays: Any) -> Dataset:
    dataset, created = dataset_upload_file(owner=owner, name="", content=npz_bytes(**arrays), filename="arrays.npz")
    assert created
    return dataset


def run_owned(spec: dict[str, Any], owner: User) -> dict[str, Any]:
    search = run_inline(create_search(spec, owner=owner))
    assert search.status == "done", search.error
    return exported(search.pk)


def shuffled_folds(n: int, k: int, seed: int) -> list[list[list[int]]]:
    """Unbalanced, unordered folds of the kind a notebook's custom CV object makes (not a KFold)."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.array_split(order, k)
    return [[sorted(np.concatenate(cuts[:i] + cuts[i + 1 :]).tolist())[: n // 2], cuts[i].tolist()] for i in range(k)]


def test_explicit_splits_equal_grid_search_cv_on_the_same_list() -> None:
    X, y = skd.load_wine(return_X_y=True)
    splits = shuffled_folds(len(y), 3, seed=5)
    grid = {"max_depth": [1, 3, None], "criterion": ["gini", "entropy"]}
    spec = {
        "estimator": "DecisionTreeClassifier", "params": {"random_state": 0}, "param_grid": grid, "dataset": "wine",
        "cv": {"splits": splits}, "scoring": ["accuracy", "f1_macro"], "refit": "accuracy", "return_train_score": True,
    }  # fmt: skip
    payload = run_and_compare(
        spec, DecisionTreeClassifier(random_state=0), X, y, param_grid=grid, cv=[(tr, te) for tr, te in splits],
        scoring=["accuracy", "f1_macro"], return_train_score=True,
    )  # fmt: skip
    assert payload["search"]["n_splits"] == 3
    assert "split2_test_accuracy" in payload["cv_results"] and "split3_test_accuracy" not in payload["cv_results"]


def test_one_explicit_fold_equals_grid_search_cv_with_one_split() -> None:
    X, y = skd.load_diabetes(return_X_y=True)
    split = [[list(range(300)), list(range(300, 442))]]
    grid = {"alpha": [0.1, 1.0, 10.0]}
    spec = {"estimator": "Ridge", "param_grid": grid, "dataset": "diabetes", "cv": {"splits": split}}
    run_and_compare(spec, Ridge(), X, y, param_grid=grid, cv=[tuple(split[0])])


def test_explicit_splits_index_the_rows_after_the_holdout() -> None:
    X, y = skd.load_iris(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=1, stratify=y)
    splits = [[list(range(0, 120, 2)), list(range(1, 120, 2))], [list(range(60, 120)), list(range(60))]]
    grid = {"n_neighbors": [1, 5, 9]}
    spec = {
        "estimator": "KNeighborsClassifier", "param_grid": grid, "dataset": "iris", "cv": {"splits": splits},
        "holdout": {"test_size": 0.2, "random_state": 1, "stratify": True}, "refit": False,
    }  # fmt: skip
    run_and_compare(spec, KNeighborsClassifier(), X_train, y_train, param_grid=grid, cv=[tuple(s) for s in splits])


def test_group_k_fold_over_an_uploaded_npz_equals_grid_search_cv_with_groups(owner: User) -> None:
    X, y_int = skd.make_classification(n_samples=240, n_features=6, n_informative=4, random_state=2)
    y = np.array(["no", "yes"])[y_int]  # string classes, as the user's own
    groups = np.repeat(np.arange(12), 20)
    dataset = upload(owner, X=X, y=y, groups=groups)
    assert dataset.kind == "npz" and dataset.has_groups
    grid = {"C": [0.01, 0.1, 1.0]}
    spec = {
        "estimator": "LogisticRegression", "param_grid": grid, "dataset": {"id": dataset.pk},
        "cv": {"n_splits": 4, "groups": True}, "scoring": "accuracy", "return_train_score": True,
    }  # fmt: skip
    payload = run_owned(spec, owner)
    reference = GridSearchCV(
        LogisticRegression(), grid, cv=GroupKFold(4), scoring="accuracy", return_train_score=True, refit=False, n_jobs=1
    ).fit(X, y, groups=groups)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert Dataset.objects.filter(owner=owner).count() == 1  # the uploaded row itself, no copy
    assert payload["search"]["dataset"]["id"] == dataset.pk


def test_an_npz_search_by_id_refits_with_the_users_classes(owner: User) -> None:
    X, y = skd.load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    dataset = upload(owner, X=X, y=labels)
    spec = {"estimator": "KNeighborsClassifier", "param_grid": {"n_neighbors": [3, 7]}, "dataset": {"id": dataset.pk}}
    search = run_inline(create_search(spec, owner=owner))
    assert search.status == "done", search.error
    reference = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [3, 7]}).fit(X, labels)
    assert search.best_params == reference.best_params_
    assert search.model.card["classes"] == ["setosa", "versicolor", "virginica"]


def test_a_rerun_of_a_search_by_id_uses_the_same_row_and_reuses_its_fits(owner: User) -> None:
    X, y = skd.load_wine(return_X_y=True)
    dataset = upload(owner, X=X, y=y)
    splits = [[list(range(0, 178, 2)), list(range(1, 178, 2))], [list(range(1, 178, 2)), list(range(0, 178, 2))]]
    spec = {
        "estimator": "LogisticRegression", "params": {"random_state": 0, "max_iter": 2000},
        "param_grid": {"C": [0.1, 1.0]}, "dataset": {"id": dataset.pk}, "cv": {"splits": splits}, "refit": False,
    }  # fmt: skip
    first = run_inline(create_search(spec, owner=owner))
    assert first.status == "done", first.error
    assert first.spec["dataset"] == {"id": dataset.pk} and first.spec["cv"] == {"splits": splits}
    again = run_inline(search_rerun(search=first, enqueue=False))
    assert again.status == "done", again.error
    assert again.dataset_id == first.dataset_id == dataset.pk and again.rerun_of_id == first.pk
    assert again.fits_reused == 4  # the same data set, folds and candidates: every fit copied, none run
    keys = set(Result.objects.filter(search=first).values_list("fit_key", flat=True))
    assert len(keys) == 4 and all(len(k) == 64 for k in keys)
    assert exported(again.pk)["cv_results"]["mean_test_score"] == exported(first.pk)["cv_results"]["mean_test_score"]


def test_halving_over_explicit_splits_equals_halving_grid_search_cv() -> None:
    X, y = skd.make_classification(n_samples=500, n_features=8, random_state=0)
    splits = [[tr.tolist(), te.tolist()] for tr, te in KFold(3, shuffle=True, random_state=9).split(X)]
    grid = {"C": [0.001, 0.01, 0.1, 1, 10, 100]}
    spec = {
        "estimator": "LogisticRegression", "param_grid": grid, "cv": {"splits": splits}, "strategy": "halving",
        "random_state": 4, "halving": {"factor": 2},
        "dataset": {"name": "make_classification", "options": {"n_samples": 500, "n_features": 8, "random_state": 0}},
    }  # fmt: skip
    search = run_inline(create_search(spec))
    assert search.status == "done", search.error
    payload = exported(search.pk)
    reference = HalvingGridSearchCV(
        LogisticRegression(),
        grid,
        cv=[tuple(s) for s in splits],
        factor=2,
        random_state=4,
        refit=False,
        return_train_score=False,
    ).fit(X, y)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["best_index"] == reference.best_index_


def test_halving_over_group_folds_equals_halving_grid_search_cv_with_groups(owner: User) -> None:
    X, y = skd.make_classification(n_samples=360, n_features=6, random_state=3)
    groups = np.arange(360) % 9
    dataset = upload(owner, X=X, y=y, groups=groups)
    grid = {"C": [0.01, 0.1, 1, 10]}
    spec = {
        "estimator": "LogisticRegression", "param_grid": grid, "dataset": {"id": dataset.pk}, "strategy": "halving",
        "cv": {"n_splits": 3, "groups": True}, "random_state": 2, "halving": {"factor": 2},
    }  # fmt: skip
    payload = run_owned(spec, owner)
    reference = HalvingGridSearchCV(
        LogisticRegression(), grid, cv=GroupKFold(3), factor=2, random_state=2, refit=False, return_train_score=False
    ).fit(X, y, groups=groups)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)

"""Explicit splits and group folds against the data, the folds the runner fits on, and their fit keys. No database."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import datasets as skd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, train_test_split

from search.engine import datasets, folds, holdout
from search.engine.reuse import fit_keys
from search.engine.run import Job, make_cv, make_splits, run_job
from search.engine.spec import SpecError, parse_spec
from search.engine.validate import plan_for_data, validate_spec

BASE: dict[str, Any] = {"estimator": "LogisticRegression", "dataset": "iris"}
IRIS = datasets.load_builtin("iris")
TWO_FOLDS = [[list(range(0, 150, 2)), list(range(1, 150, 2))], [list(range(1, 150, 2)), list(range(0, 150, 2))]]


def grouped(n_groups: int = 6) -> datasets.Data:
    return datasets.Data(IRIS.X, IRIS.y, IRIS.feature_names, IRIS.target_name, groups=np.arange(150) % n_groups)


def plan(cv: Any, **changes: Any) -> Any:
    return validate_spec(parse_spec({**BASE, "cv": cv, **changes}))


def planned_error(cv: Any, data: datasets.Data = IRIS, **changes: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        plan_for_data(plan(cv, **changes), data, max_fits=None)
    return info.value


def test_splits_within_the_rows_plan_with_their_number_of_folds() -> None:
    planned = plan_for_data(plan({"splits": TWO_FOLDS}), IRIS, max_fits=None)
    assert planned.n_samples == 150 and planned.n_fits == 2
    one = plan_for_data(plan({"splits": [[[0, 1, 50, 51, 100, 101], [2]]]}), IRIS, max_fits=None)
    assert one.n_fits == 1  # one fold, and no stratified-fold count is asked of the user's own folds


def test_an_index_beyond_the_rows_names_cv_splits() -> None:
    error = planned_error({"splits": [[[0, 1], [2]], [[0, 1], [150]]]})
    assert error.field == "cv.splits"
    assert error.message == "fold 1 names row 150, but cross-validation sees 150 rows (0 to 149)"


def test_with_a_holdout_the_indices_are_rows_of_the_training_part() -> None:
    inside = [[list(range(100)), list(range(100, 112))]]  # 150 - 38 held out = 112 rows
    assert plan_for_data(plan({"splits": inside}, holdout={"test_size": 38}), IRIS, max_fits=None).n_samples == 112
    error = planned_error({"splits": [[list(range(100)), [112]]]}, holdout={"test_size": 38})
    assert error.field == "cv.splits"  # the user's index, not the holdout, is named
    assert "names row 112, but cross-validation sees 112 rows (0 to 111), after 38 held out" in error.message


def test_groups_need_a_data_set_with_groups_and_enough_of_them() -> None:
    error = planned_error({"n_splits": 3, "groups": True})
    assert error.field == "cv.groups" and "this data set has no groups" in error.message
    assert plan_for_data(plan({"n_splits": 3, "groups": True}), grouped(3), max_fits=None).n_fits == 3
    few = planned_error({"n_splits": 4, "groups": True}, grouped(3))
    assert few.field == "cv.n_splits" and "GroupKFold(4) needs at least 4 distinct groups; the data set has 3" in (
        few.message
    )


def test_make_cv_returns_the_users_folds_in_order() -> None:
    cv = parse_spec({**BASE, "cv": {"splits": TWO_FOLDS}}).cv.to_dict()
    fixed = make_cv(cv, IRIS.y, classifier=True)
    assert isinstance(fixed, list) and len(fixed) == 2
    for (train, test), (want_train, want_test) in zip(fixed, TWO_FOLDS, strict=True):
        assert train.tolist() == want_train and test.tolist() == want_test
    again = make_splits(cv, IRIS, classifier=True)
    assert [(a.tolist(), b.tolist()) for a, b in again] == [(a.tolist(), b.tolist()) for a, b in fixed]


def test_group_folds_are_group_k_folds_over_the_data_sets_groups() -> None:
    data = grouped(5)
    cv = parse_spec({**BASE, "cv": {"n_splits": 5, "groups": True}}).cv.to_dict()
    assert isinstance(make_cv(cv, data.y, classifier=True), GroupKFold)
    ours = make_splits(cv, data, classifier=True)
    groups = data.groups
    assert groups is not None
    theirs = list(GroupKFold(5).split(data.X, data.y, groups))
    assert len(ours) == 5
    for (a, b), (c, d) in zip(ours, theirs, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)
        assert not set(groups[a]) & set(groups[b])  # no group on both sides


def test_a_holdout_splits_the_groups_with_the_rows() -> None:
    data = grouped(7)
    train, test = holdout.split(data, holdout.HoldoutSpec(test_size=0.3, random_state=2))
    X_train, X_test, g_train, g_test = train_test_split(data.X, data.groups, test_size=0.3, random_state=2)
    assert np.array_equal(train.X, X_train) and np.array_equal(test.X, X_test)
    assert train.groups is not None and np.array_equal(train.groups, g_train)
    assert test.groups is not None and np.array_equal(test.groups, g_test)
    plain_train, _ = holdout.split(IRIS, holdout.HoldoutSpec(test_size=0.3, random_state=2))
    assert np.array_equal(plain_train.X, train.X) and plain_train.groups is None  # the same rows, with or without


def test_the_runner_fits_the_explicit_folds_as_grid_search_cv_does() -> None:
    splits = [[list(range(0, 150, 3)), list(range(1, 150, 3))], [list(range(1, 150, 3)), list(range(2, 150, 3))]]
    job = Job(
        steps=[("LogisticRegression", "sklearn.linear_model")], params={"max_iter": 500},
        data={"kind": "builtin", "name": "iris"}, cv={"splits": splits}, scoring="accuracy", n_jobs=1,
        return_train_score=False, cells=[(c, f, {"C": C}) for c, C in enumerate([0.1, 1.0]) for f in range(2)],
    )  # fmt: skip
    ours = {(r.candidate, r.fold): r.test_scores["score"] for r in run_job(job)}
    reference = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=[(tr, te) for tr, te in splits], scoring="accuracy"
    ).fit(IRIS.X, IRIS.y)
    for c in range(2):
        for f in range(2):
            assert ours[(c, f)] == reference.cv_results_[f"split{f}_test_score"][c]
    assert {r.n_test_samples for r in run_job(job)} == {50}


def test_fit_keys_hold_a_digest_of_the_splits_not_the_indices() -> None:
    base = {
        "steps": [["KNeighborsClassifier", "sklearn.neighbors"]], "params": {}, "data": {"key": "abc"},
        "scoring": None, "n_jobs": -1, "return_train_score": False, "cells": [[0, 0, {}], [0, 1, {}]],
        "cluster_workers": 1, "subsample": None, "path_reuse": True,
    }  # fmt: skip
    keys = fit_keys({**base, "cv": {"splits": TWO_FOLDS}})
    assert len(keys) == 2 and keys == fit_keys({**base, "cv": {"splits": [list(map(list, f)) for f in TWO_FOLDS]}})
    other = fit_keys({**base, "cv": {"splits": [TWO_FOLDS[1], TWO_FOLDS[0]]}})
    assert set(other.values()).isdisjoint(keys.values())  # other folds (even the same ones reordered): other keys
    assert set(fit_keys({**base, "cv": {"n_splits": 2, "shuffle": False}}).values()).isdisjoint(keys.values())
    identity = folds.cv_identity({"splits": TWO_FOLDS})
    assert identity == {"splits_sha256": folds.splits_digest(TWO_FOLDS)} and len(identity["splits_sha256"]) == 64
    grouped_keys = fit_keys({**base, "cv": {"n_splits": 2, "shuffle": False, "random_state": None, "groups": True}})
    assert set(grouped_keys.values()).isdisjoint(keys.values())


def test_a_one_fold_search_scores_as_grid_search_cv_on_one_split() -> None:
    X, y = skd.load_iris(return_X_y=True)
    split = [[list(range(0, 150, 2)), list(range(1, 150, 2))]]
    job = Job(
        steps=[("KNeighborsClassifier", "sklearn.neighbors")], params={}, data={"kind": "builtin", "name": "iris"},
        cv={"splits": split}, scoring=None, n_jobs=1, return_train_score=False, cells=[(0, 0, {"n_neighbors": 3})],
    )  # fmt: skip
    (result,) = run_job(job)
    from sklearn.neighbors import KNeighborsClassifier

    reference = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [3]}, cv=[tuple(split[0])]).fit(X, y)
    assert result.test_scores["score"] == reference.cv_results_["split0_test_score"][0]

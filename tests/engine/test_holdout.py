"""The held-out split and `refit` in a spec: parsed, checked against the data, the rows scikit-learn sets aside."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split

from search.engine import datasets, holdout
from search.engine.spec import SpecError, parse_spec
from search.engine.validate import plan_for_data, validate_spec

BASE: dict[str, Any] = {"estimator": "SVC", "dataset": "wine", "cv": 4}


def test_refit_takes_what_gridsearchcv_takes() -> None:
    assert parse_spec(BASE).refit is True  # the default, as GridSearchCV(refit=True)
    assert parse_spec({**BASE, "refit": None}).refit is True  # specs stored before refit took true/false
    assert parse_spec({**BASE, "refit": False}).refit is False
    several = parse_spec({**BASE, "scoring": ["accuracy", "f1_macro"], "refit": "f1_macro"})
    assert several.refit == "f1_macro" and several.refit_metric == "f1_macro"
    assert parse_spec({**BASE, "scoring": ["accuracy", "f1_macro"]}).refit_metric == "accuracy"
    one = parse_spec({**BASE, "scoring": "f1_macro", "refit": "f1_macro"})  # GridSearchCV accepts it: one metric
    assert one.refit is True and one.refit_metric == "score"
    for spec in (several, one, parse_spec({**BASE, "refit": False})):
        assert parse_spec(spec.to_dict()) == spec


def test_holdout_defaults_and_round_trip() -> None:
    spec = parse_spec({**BASE, "holdout": {}})
    assert spec.holdout == holdout.HoldoutSpec(test_size=0.25, random_state=0, stratify=False)
    assert parse_spec({**BASE, "holdout": True}).holdout == spec.holdout
    assert (
        parse_spec({**BASE, "holdout": None}).holdout is None and parse_spec({**BASE, "holdout": False}).holdout is None
    )
    rows = parse_spec({**BASE, "holdout": {"test_size": 30, "random_state": 9, "stratify": True}})
    assert rows.to_dict()["holdout"] == {"test_size": 30, "random_state": 9, "stratify": True}
    assert parse_spec(rows.to_dict()) == rows


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"test_size": 1.0}, "holdout.test_size", "a fraction between 0 and 1"),
        ({"test_size": -3}, "holdout.test_size", "a number of rows of at least 1"),
        ({"test_size": True}, "holdout.test_size", "got True"),
        ({"test_size": float("nan")}, "holdout.test_size", "got nan"),
        ({"random_state": 2**32}, "holdout.random_state", "between 0 and 2**32 - 1"),
        ({"stratify": "yes"}, "holdout.stratify", "expected true or false"),
        ({"seed": 1}, "holdout.seed", "unknown key"),
        ([0.25], "holdout", "expected an object"),
    ],
)
def test_bad_holdouts_name_the_field(value: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec({**BASE, "holdout": value})
    assert raised.value.field == field and message in raised.value.message


def test_the_split_is_train_test_split_s() -> None:
    data = datasets.load_builtin("wine")
    for hs in (holdout.HoldoutSpec(0.3, 3, True), holdout.HoldoutSpec(25, 1, False)):
        train, test = holdout.split(data, hs)
        stratify = data.y if hs.stratify else None
        X_train, X_test, y_train, y_test = train_test_split(
            data.X, data.y, test_size=hs.test_size, random_state=hs.random_state, stratify=stratify
        )
        assert np.array_equal(train.X, X_train) and np.array_equal(test.X, X_test)
        assert np.array_equal(train.y, y_train) and np.array_equal(test.y, y_test)
        assert train.feature_names == data.feature_names == test.feature_names


def test_planning_sees_the_training_part_only() -> None:
    X, y = skd.load_wine(return_X_y=True)
    plan = validate_spec(parse_spec({**BASE, "holdout": {"test_size": 0.3, "random_state": 3, "stratify": True}}))
    planned = plan_for_data(plan, datasets.load_builtin("wine"), max_fits=None)
    X_train, X_test, *_ = train_test_split(X, y, test_size=0.3, random_state=3, stratify=y)
    assert (planned.n_samples, planned.n_test) == (len(X_train), len(X_test)) == (124, 54)


def test_a_holdout_that_leaves_too_few_rows_names_the_holdout() -> None:
    plan = validate_spec(parse_spec({**BASE, "cv": 10, "holdout": {"test_size": 0.85}}))
    with pytest.raises(SpecError) as raised:
        plan_for_data(plan, datasets.load_builtin("wine"), max_fits=None)
    assert raised.value.field == "holdout.test_size"
    assert (
        "holding out 152 of 178 rows leaves too few" in raised.value.message
        and "10 stratified folds" in raised.value.message
    )
    # the same folds without the holdout are fine: the error is the holdout's, not the folds'
    plan_for_data(validate_spec(parse_spec({**BASE, "cv": 10})), datasets.load_builtin("wine"), max_fits=None)

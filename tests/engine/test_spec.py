from typing import Any

import pytest

from search.engine.spec import SpecError, parse_spec
from search.engine.validate import validate_spec

BASE = {"estimator": "SVC", "dataset": {"name": "iris"}}


def spec(**changes):
    return {**BASE, **changes}


def test_minimal_spec_defaults_like_gridsearchcv() -> None:
    s = parse_spec(BASE)
    assert s.cv.n_splits == 5 and not s.cv.shuffle
    assert s.scoring is None and s.metrics == ("score",)
    assert s.n_jobs == -1
    plan = validate_spec(s)
    assert plan.candidates == [{}] and plan.task == "classification"


def test_canonical_form_round_trips() -> None:
    s = parse_spec(
        spec(
            estimator=["StandardScaler", "SVC"],
            param_grid=[{"svc__C": [1, 2]}, {"svc__kernel": ["linear"]}],
            cv={"n_splits": 3, "shuffle": True, "random_state": 4},
            scoring=["accuracy", "f1_macro"],
            refit="f1_macro",
        )
    )
    assert parse_spec(s.to_dict()) == s
    assert s.metrics == ("accuracy", "f1_macro") and s.refit_metric == "f1_macro"


def test_candidates_in_parameter_grid_order() -> None:
    plan = validate_spec(parse_spec(spec(param_grid={"gamma": [0.1, 1], "C": [1, 10]})))
    assert plan.candidates == [
        {"C": 1, "gamma": 0.1},
        {"C": 1, "gamma": 1},
        {"C": 10, "gamma": 0.1},
        {"C": 10, "gamma": 1},
    ]
    assert plan.n_fits == 20


def test_generator_gets_fixed_random_state_and_shuffle_gets_seed() -> None:
    s = parse_spec(spec(dataset={"name": "make_moons", "options": {"n_samples": 40}}, cv={"shuffle": True}))
    assert s.dataset.options["random_state"] == 0
    assert s.cv.random_state == 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ([], "spec", "expected a JSON object"),
        ({"dataset": "iris"}, "estimator", "is required"),
        (spec(foo=1), "foo", "unknown key"),
        (spec(estimator=""), "estimator", "class name"),
        (spec(estimator="SVX"), "estimator", "unknown estimator 'SVX'"),
        (spec(estimator="StandardScaler"), "estimator", "last step must be a classifier or regressor"),
        (spec(estimator=["SVC", "SVC"]), "estimator[0]", "must be transformers"),
        (spec(param_grid={"C": 1}), "param_grid", "needs to be a list"),
        (spec(param_grid={"C": []}), "param_grid", "non-empty sequence"),
        (spec(param_grid=[]), "param_grid", "non-empty list"),
        (spec(param_grid={"C": [-1.0]}), "param_grid.C", "must be a float in the range"),
        (spec(param_grid={"kernel": ["cubic"]}), "param_grid.kernel", "must be a str among"),
        (spec(param_grid={"Cee": [1]}), "param_grid.Cee", "Valid parameters: C, break_ties"),
        (spec(param_grid=[{"C": [1]}, {"D": [1]}]), "param_grid[1].D", "no parameter 'D'"),
        (spec(param_grid={"C": [{"a": 1}]}), "param_grid.C[0]", "objects are not allowed"),
        (spec(params={"C": "big"}), "params", "must be a float"),
        (spec(params={"tol": float("nan")}), "params.tol", "finite number"),
        (spec(dataset={"name": "mnist"}), "dataset.name", "unknown data set"),
        (spec(dataset={"name": "iris", "options": {"a": 1}}), "dataset.options", "takes no options"),
        (spec(dataset={"name": "make_moons", "options": {"noize": 1}}), "dataset.options", "unknown option"),
        (spec(dataset={"csv": "x.csv"}), "dataset.target", "target column"),
        (spec(dataset={"name": "iris", "csv": "x.csv"}), "dataset", "exactly one"),
        (spec(cv=1), "cv.n_splits", "at least 2"),
        (spec(cv={"n_splits": 3, "random_state": 1}), "cv.random_state", "shuffle"),
        (spec(cv={"folds": 3}), "cv.folds", "unknown key"),
        (spec(scoring="acc"), "scoring", "unknown scorer 'acc'"),
        (spec(scoring=["accuracy", "accuracy"]), "scoring", "twice"),
        (spec(scoring="r2"), "scoring", "'r2' is a regression scorer and SVC is a classification estimator"),
        (spec(estimator="Ridge", dataset="diabetes", scoring="f1"), "scoring", "'f1' is a classification scorer"),
        (spec(scoring=["accuracy"], refit="f1"), "refit", "not one of the metrics"),
        (spec(n_jobs=0), "n_jobs", "non-zero"),
        (spec(n_jobs="all"), "n_jobs", "non-zero"),
        (spec(return_train_score="yes"), "return_train_score", "true or false"),
    ],
)
def test_bad_specs_name_the_field(data, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_spec(parse_spec(data))
    assert info.value.field == field
    assert message in info.value.message


# --- a data set by id, explicit splits, group folds ------------------------------------------------

SPLITS = [[[0, 1, 2, 3], [4, 5]], [[2, 3, 4, 5], [0, 1]]]


def test_dataset_by_id_parses_and_round_trips() -> None:
    s = parse_spec(spec(dataset={"id": 7}))
    assert s.dataset.id == 7 and s.dataset.name is None and s.dataset.csv is None
    assert s.to_dict()["dataset"] == {"id": 7}
    assert parse_spec(s.to_dict()) == s


def test_explicit_splits_parse_and_round_trip() -> None:
    s = parse_spec(spec(cv={"splits": SPLITS}))
    assert s.cv.splits == (((0, 1, 2, 3), (4, 5)), ((2, 3, 4, 5), (0, 1)))
    assert s.cv.n_splits == 2 and not s.cv.shuffle and not s.cv.groups
    assert s.to_dict()["cv"] == {"splits": SPLITS}
    assert parse_spec(s.to_dict()) == s
    one = parse_spec(spec(cv={"splits": [[[0, 1], [2]]]}))  # one fold, as GridSearchCV takes cv=[(train, test)]
    assert one.cv.n_splits == 1 and validate_spec(one).n_fits == 1


def test_group_folds_parse_and_round_trip() -> None:
    s = parse_spec(spec(cv={"n_splits": 3, "groups": True}))
    assert s.cv.groups and s.cv.n_splits == 3 and s.cv.splits is None
    assert s.to_dict()["cv"] == {"n_splits": 3, "shuffle": False, "random_state": None, "groups": True}
    assert parse_spec(s.to_dict()) == s
    plain = parse_spec(spec(cv=4)).to_dict()["cv"]
    assert plain == {"n_splits": 4, "shuffle": False, "random_state": None}  # no new key: old fit keys hold


def test_stored_spec_reads_splits_and_groups_back() -> None:
    from search.engine.stored import StoredSpec

    for cv in ({"splits": SPLITS}, {"n_splits": 3, "groups": True}, 4):
        s = parse_spec(spec(cv=cv))
        assert StoredSpec.from_dict(s.to_dict()).cv == s.cv


@pytest.mark.parametrize(
    ("cv", "field", "message"),
    [
        ({"splits": SPLITS, "n_splits": 2}, "cv.n_splits", "cannot be given with splits"),
        ({"splits": SPLITS, "shuffle": True}, "cv.shuffle", "cannot be given with splits"),
        ({"splits": SPLITS, "random_state": 0}, "cv.random_state", "cannot be given with splits"),
        ({"splits": SPLITS, "groups": True}, "cv.groups", "cannot be given with splits"),
        ({"splits": []}, "cv.splits", "is empty"),
        ({"splits": "0-3/4-5"}, "cv.splits", "expected a list of [train_indices, test_indices] pairs"),
        ({"splits": [[[0, 1], [2]], [[0, 1]]]}, "cv.splits[1]", "expected a pair [train_indices, test_indices]"),
        ({"splits": [[[0, 1], [2], [3]]]}, "cv.splits[0]", "got a list of 3"),
        ({"splits": [[[0, 1], 2]]}, "cv.splits[0]", "expected a pair"),
        ({"splits": [[[], [2]]]}, "cv.splits[0]", "the train part is empty"),
        ({"splits": [[[0], []]]}, "cv.splits[0]", "the test part is empty"),
        ({"splits": [[[0, 1], [2]], [[0, -1], [2]]]}, "cv.splits[1]", "the train part holds -1"),
        ({"splits": [[[0, 1], [True]]]}, "cv.splits[0]", "the test part holds True"),
        ({"splits": [[[0, 1.0], [2]]]}, "cv.splits[0]", "the train part holds 1.0"),
        ({"splits": [[[0, "1"], [2]]]}, "cv.splits[0]", "the train part holds '1'"),
        ({"splits": [[[0, 1, 1], [2]]]}, "cv.splits[0]", "the train part names row 1 more than once"),
        ({"splits": [[[0, 1], [3, 3]]]}, "cv.splits[0]", "the test part names row 3 more than once"),
        ({"splits": [[[0, 1, 2], [2, 1]]]}, "cv.splits[0]", "row 1 is in both the train and the test part"),
        ({"n_splits": 3, "groups": "yes"}, "cv.groups", "expected true or false"),
        ({"n_splits": 3, "groups": True, "shuffle": True}, "cv.groups", "remove shuffle"),
        ({"n_splits": 1, "groups": True}, "cv.n_splits", "at least 2"),
        ({"folds": SPLITS}, "cv.folds", "allowed keys: groups, n_splits, random_state, shuffle, splits"),
    ],
)
def test_bad_cv_names_the_field(cv: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec(cv=cv))
    assert info.value.field == field
    assert message in info.value.message


def test_splits_above_the_index_limit_are_refused_before_they_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from search.engine import folds

    monkeypatch.setattr(folds, "MAX_SPLIT_INDICES", 10)
    with pytest.raises(SpecError) as info:
        parse_spec(spec(cv={"splits": [[list(range(6)), ["not even checked"] * 5]]}))
    assert info.value.field == "cv.splits" and "11 indices in all; the limit is 10" in info.value.message
    assert parse_spec(spec(cv={"splits": [[list(range(6)), list(range(6, 10))]]})).cv.n_splits == 1


@pytest.mark.parametrize(
    ("dataset", "field", "message"),
    [
        ({"id": 0}, "dataset.id", "expected the positive integer id"),
        ({"id": "3"}, "dataset.id", "got '3'"),
        ({"id": True}, "dataset.id", "got True"),
        ({"id": 3, "target": "y"}, "dataset.target", "named by its id alone"),
        ({"id": 3, "name": "iris"}, "dataset.name", "named by its id alone"),
        ({"id": 3, "csv": "x.csv"}, "dataset.csv", "named by its id alone"),
        ({"rows": 3}, "dataset.rows", "allowed keys: csv, id, name, options, target"),
    ],
)
def test_bad_dataset_ids_name_the_field(dataset: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec(dataset=dataset))
    assert info.value.field == field and message in info.value.message

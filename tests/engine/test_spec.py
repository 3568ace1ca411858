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

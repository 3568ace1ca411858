"""A fit's fresh estimator: built by its class from plain parameters where that is what clone + set_params build."""

from typing import Any

import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from search.engine import registry
from search.engine.fits import FitContext, fit_and_score, fresh, plain_params, single_process
from search.engine.run import make_scorer

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("DecisionTreeClassifier", "sklearn.tree", {}, {"max_depth": 3, "min_samples_leaf": 2, "ccp_alpha": 1e-05}),
    ("LogisticRegression", "sklearn.linear_model", {"max_iter": 200}, {"C": 0.5}),
    ("SVC", "sklearn.svm", {"kernel": "rbf"}, {"C": 2.0, "gamma": "scale"}),
    ("RandomForestClassifier", "sklearn.ensemble", {"random_state": 0}, {"n_estimators": 7, "max_features": None}),
    ("KNeighborsClassifier", "sklearn.neighbors", {}, {"n_neighbors": 4, "weights": "distance"}),
]


def context(est: BaseEstimator) -> FitContext:
    X, y = load_iris(return_X_y=True)
    return FitContext(est, X, y, make_scorer(est, None), ["score"], False, 1, plain_params=plain_params(est))


@pytest.mark.parametrize(("name", "module", "base", "params"), CASES)
def test_a_fresh_estimator_is_the_one_clone_and_set_params_build(
    name: str, module: str, base: dict[str, Any], params: dict[str, Any]
) -> None:
    est = single_process(registry.build(((name, module),), base))
    ctx = context(est)
    assert ctx.plain_params is not None  # these all take the direct path
    built, cloned = fresh(ctx, params), clone(est).set_params(**params)
    assert type(built) is type(cloned)
    # every attribute, not only the parameters (a forest's `estimator` template is a new object in both: by repr)
    assert {k: repr(v) for k, v in vars(built).items()} == {k: repr(v) for k, v in vars(cloned).items()}
    assert built is not est and built.get_params() == cloned.get_params()


def test_the_direct_path_fits_score_for_score_as_grid_search_cv() -> None:
    est = single_process(registry.build((("DecisionTreeClassifier", "sklearn.tree"),), {"random_state": 0}))
    ctx = context(est)
    grid: dict[str, list[Any]] = {"max_depth": [1, 2, 3, None], "min_samples_leaf": [1, 3]}
    cv = StratifiedKFold(5)
    splits = list(cv.split(ctx.X, ctx.y))
    candidates = [{"max_depth": d, "min_samples_leaf": m} for d in grid["max_depth"] for m in grid["min_samples_leaf"]]
    reference = GridSearchCV(clone(est), grid, cv=cv).fit(ctx.X, ctx.y).cv_results_
    for i, params in enumerate(reference["params"]):
        assert params == candidates[i]
        for fold, (train, test) in enumerate(splits):
            result = fit_and_score(ctx, train, test, params, i, fold)
            assert result.test_scores["score"] == reference[f"split{fold}_test_score"][i]


def test_objects_and_nested_parameters_take_clone_s_path() -> None:
    pipeline = registry.build((("StandardScaler", "sklearn.preprocessing"), ("SVC", "sklearn.svm")), {})
    assert plain_params(pipeline) is None  # its steps are estimators: clone copies them
    tree = registry.build((("DecisionTreeClassifier", "sklearn.tree"),), {})
    ctx = context(tree)
    weights = {0: 1.0, 1: 2.0, 2: 1.0}
    built = fresh(ctx, {"class_weight": weights})  # a dict value: deep-copied by clone, never shared
    assert built.class_weight == weights and built.class_weight is not weights
    requested = registry.build((("DecisionTreeClassifier", "sklearn.tree"),), {})
    requested._sklearn_output_config = {"transform": "default"}  # what set_output leaves: clone copies it
    assert plain_params(requested) is None

"""Oracle for random search and successive halving: the same candidates, rounds and scores as
`RandomizedSearchCV`, `HalvingGridSearchCV` and `HalvingRandomSearchCV`, through the runner process, the
database and the export.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.stats
from sklearn import datasets as skd
from sklearn.ensemble import RandomForestClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV, RandomizedSearchCV
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from search.engine import halving
from search.engine.spec import parse_spec
from search.models import Candidate, WorkUnit
from tests.conftest import create_search, run_inline
from tests.system.test_oracle import assert_same_cv_results, exported

pytestmark = pytest.mark.django_db


def run(spec: dict[str, Any]) -> dict[str, Any]:
    search = run_inline(create_search(spec))
    assert search.status == "done", search.error
    return exported(search.pk)


# ---------------------------------------------------------------------------------------------
# Random search
# ---------------------------------------------------------------------------------------------


def test_random_search_with_distributions_equals_randomized_search_cv() -> None:
    X, y = skd.load_iris(return_X_y=True)
    spec = {
        "estimator": "SVC", "dataset": "iris", "cv": 4, "strategy": "random", "n_iter": 8, "random_state": 7,
        "param_distributions": {
            "C": {"distribution": "loguniform", "args": [0.01, 100]},
            "gamma": {"distribution": "uniform", "args": [0.001], "kwargs": {"scale": 0.5}},
            "kernel": ["rbf", "linear"],
        },
    }  # fmt: skip
    payload = run(spec)
    dists = {"C": scipy.stats.loguniform(0.01, 100), "gamma": scipy.stats.uniform(0.001, scale=0.5),
             "kernel": ["rbf", "linear"]}  # fmt: skip
    reference = RandomizedSearchCV(SVC(), dists, n_iter=8, random_state=7, cv=4, refit=False).fit(X, y)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["n_candidates"] == 8


def test_random_search_over_lists_samples_without_replacement_like_sklearn() -> None:
    X, y = skd.load_wine(return_X_y=True)
    dists = {"max_depth": [1, 2, 3, 4, None], "criterion": ["gini", "entropy"], "min_samples_leaf": [1, 5]}
    spec = {"estimator": "DecisionTreeClassifier", "params": {"random_state": 0}, "dataset": "wine", "cv": 3,
            "strategy": "random", "n_iter": 6, "random_state": 3, "param_distributions": dists}  # fmt: skip
    payload = run(spec)
    reference = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0), dists, n_iter=6, random_state=3, cv=3, refit=False
    ).fit(X, y)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)


def test_random_search_randint_and_list_of_dicts() -> None:
    X, y = skd.load_diabetes(return_X_y=True)
    dists = [{"alpha": {"distribution": "expon", "args": [0, 2]}}, {"solver": ["svd", "cholesky"]}]
    spec = {"estimator": "Ridge", "dataset": "diabetes", "cv": 3, "strategy": "random", "n_iter": 5,
            "random_state": 0, "param_distributions": dists}  # fmt: skip
    payload = run(spec)
    reference = RandomizedSearchCV(
        Ridge(), [{"alpha": scipy.stats.expon(0, 2)}, {"solver": ["svd", "cholesky"]}], n_iter=5, random_state=0,
        cv=3, refit=False,
    ).fit(X, y)  # fmt: skip
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)


def test_random_spec_round_trips_and_defaults_to_a_fixed_seed() -> None:
    spec = parse_spec({"estimator": "SVC", "dataset": "iris", "strategy": "random",
                       "param_distributions": {"C": {"distribution": "randint", "args": [1, 20]}}})  # fmt: skip
    assert spec.random_state == 0 and spec.n_iter == 10
    assert parse_spec(spec.to_dict()) == spec


# ---------------------------------------------------------------------------------------------
# Successive halving
# ---------------------------------------------------------------------------------------------


def _halving_reference(estimator: Any, grid: dict[str, Any], X: Any, y: Any, **kwargs: Any) -> HalvingGridSearchCV:
    return HalvingGridSearchCV(estimator, grid, refit=False, return_train_score=False, **kwargs).fit(X, y)


def test_halving_over_samples_keeps_the_same_candidates_with_the_same_scores() -> None:
    X, y = skd.make_classification(n_samples=600, n_features=10, random_state=0)
    grid = {"C": [0.001, 0.01, 0.1, 1, 10, 100], "fit_intercept": [True, False]}
    spec = {
        "estimator": "LogisticRegression", "param_grid": grid, "cv": 3, "strategy": "halving", "random_state": 4,
        "dataset": {"name": "make_classification", "options": {"n_samples": 600, "n_features": 10, "random_state": 0}},
        "halving": {"factor": 2},
    }  # fmt: skip
    payload = run(spec)
    reference = _halving_reference(LogisticRegression(), grid, X, y, cv=3, factor=2, random_state=4)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert list(payload["cv_results"])[:2] == ["iter", "n_resources"]
    cv = payload["cv_results"]
    best = payload["search"]["best_index"]
    assert cv["params"][best] == reference.cv_results_["params"][reference.best_index_]
    assert best == reference.best_index_
    rounds = payload["search"]["schedule"]
    assert rounds["n_resources"] == reference.n_resources_ and rounds["n_candidates"] == reference.n_candidates_


def test_halving_over_an_estimator_budget_parameter() -> None:
    X, y = skd.load_breast_cancer(return_X_y=True)
    grid = {"max_depth": [2, 4, None], "max_features": ["sqrt", None]}
    spec = {
        "estimator": "RandomForestClassifier", "params": {"random_state": 0}, "param_grid": grid, "cv": 3,
        "dataset": "breast_cancer", "strategy": "halving",
        "halving": {"resource": "n_estimators", "max_resources": 30, "min_resources": 5, "factor": 3},
    }  # fmt: skip
    payload = run(spec)
    reference = _halving_reference(
        RandomForestClassifier(random_state=0), grid, X, y, cv=3, resource="n_estimators", max_resources=30,
        min_resources=5, factor=3,
    )  # fmt: skip
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["best_index"] == reference.best_index_


def test_halving_aggressive_elimination_and_smallest() -> None:
    X, y = skd.load_iris(return_X_y=True)
    grid = {"n_neighbors": [1, 3, 5, 7, 9, 11, 13, 15, 17], "weights": ["uniform", "distance"]}
    from sklearn.neighbors import KNeighborsClassifier

    halving_options = {"min_resources": "smallest", "aggressive_elimination": True}
    spec = {"estimator": "KNeighborsClassifier", "param_grid": grid, "cv": 3, "dataset": "iris",
            "strategy": "halving", "halving": halving_options}  # fmt: skip
    payload = run(spec)
    reference = _halving_reference(
        KNeighborsClassifier(), grid, X, y, cv=3, min_resources="smallest", aggressive_elimination=True, random_state=0
    )
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)


def test_halving_over_sampled_candidates_equals_halving_random_search_cv() -> None:
    """n_candidates="exhaust" and min_resources="smallest" (its defaults): how many candidates are drawn
    depends on the data set, so they are sampled once it is loaded."""
    X, y = skd.make_classification(n_samples=400, n_features=8, random_state=1)
    spec = {
        "estimator": "LogisticRegression", "cv": 3, "strategy": "halving", "random_state": 3,
        "dataset": {"name": "make_classification", "options": {"n_samples": 400, "n_features": 8, "random_state": 1}},
        "param_distributions": {"C": {"distribution": "loguniform", "args": [0.001, 100]},
                                "fit_intercept": [True, False]},
        "halving": {"factor": 3},
    }  # fmt: skip
    payload = run(spec)
    dists = {"C": scipy.stats.loguniform(0.001, 100), "fit_intercept": [True, False]}
    reference = HalvingRandomSearchCV(
        LogisticRegression(), dists, cv=3, factor=3, random_state=3, refit=False, return_train_score=False
    ).fit(X, y)
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["best_index"] == reference.best_index_
    rounds = payload["search"]["schedule"]
    assert rounds["n_resources"] == reference.n_resources_ and rounds["n_candidates"] == reference.n_candidates_
    assert reference.n_candidates_[0] == 400 // (3 * 2 * 2)  # max_resources // min_resources ("smallest")
    again = parse_spec(payload["search"]["spec"])
    assert again.halving is not None and again.halving.n_candidates == "exhaust" and again.param_distributions


def test_halving_over_a_fixed_number_of_sampled_candidates_and_a_budget() -> None:
    X, y = skd.load_wine(return_X_y=True)
    dists = {"max_depth": [2, 3, 4, None], "max_features": ["sqrt", "log2", None], "min_samples_leaf": [1, 3]}
    spec = {
        "estimator": "RandomForestClassifier", "params": {"random_state": 0}, "cv": 3, "dataset": "wine",
        "strategy": "halving", "random_state": 5, "param_distributions": dists,
        "halving": {"n_candidates": 9, "resource": "n_estimators", "min_resources": 4, "max_resources": 36},
    }  # fmt: skip
    payload = run(spec)
    reference = HalvingRandomSearchCV(
        RandomForestClassifier(random_state=0), dists, n_candidates=9, resource="n_estimators", min_resources=4,
        max_resources=36, cv=3, random_state=5, refit=False, return_train_score=False,
    ).fit(X, y)  # fmt: skip
    assert_same_cv_results(payload["cv_results"], reference.cv_results_)
    assert payload["search"]["best_index"] == reference.best_index_


def test_sampled_halving_spec_errors() -> None:
    from search.engine.spec import SpecError

    base = {"estimator": "LogisticRegression", "dataset": "iris", "strategy": "halving",
            "param_distributions": {"C": [0.1, 1.0]}}  # fmt: skip
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"param_grid": {"C": [1.0]}}, "param_distributions", "not both"),
        ({"halving": {"n_candidates": 0}}, "halving.n_candidates", "positive integer or 'exhaust'"),
        ({"halving": {"n_candidates": "all"}}, "halving.n_candidates", "got 'all'"),
        ({"halving": {"min_resources": "exhaust"}}, "halving.min_resources", "cannot both be 'exhaust'"),
    ]
    for extra, field, words in cases:
        with pytest.raises(SpecError) as err:
            parse_spec({**base, **extra})
        assert err.value.field == field and words in err.value.message, err.value
    grid = {k: v for k, v in base.items() if k != "param_distributions"}
    with pytest.raises(SpecError) as err:
        parse_spec({**grid, "param_grid": {"C": [1.0]}, "halving": {"n_candidates": 3}})
    assert err.value.field == "halving.n_candidates" and "a grid has its own" in err.value.message


def test_halving_rounds_are_stored_as_candidates_and_units_per_round() -> None:
    grid = {"C": [0.01, 0.1, 1, 10]}
    search = run_inline(create_search({
        "estimator": "LogisticRegression", "param_grid": grid, "cv": 3, "dataset": "breast_cancer",
        "strategy": "halving", "halving": {"factor": 2},
    }))  # fmt: skip
    assert search.status == "done"
    per_round = [Candidate.objects.filter(search=search, round=i).count() for i in range(3)]
    assert per_round == search.schedule["n_candidates"] == [4, 2, 1]
    assert sorted(set(WorkUnit.objects.filter(search=search).values_list("round", flat=True))) == [0, 1, 2]
    assert search.n_fits == search.n_fits_done == 7 * 3
    assert search.round == 2


@pytest.mark.parametrize(
    ("n_candidates", "n_samples", "kwargs"),
    [(18, 600, {}), (50, 150, {"factor": 2}), (9, 1000, {"min_resources": 30}),
     (27, 100, {"aggressive_elimination": True}), (10, 569, {"factor": 2.5}),
     (12, 442, {"max_resources": 300, "min_resources": "smallest"})],
)  # fmt: skip
def test_schedule_equals_sklearn(n_candidates: int, n_samples: int, kwargs: dict[str, Any]) -> None:
    X, y = skd.make_classification(n_samples=n_samples, n_features=4, n_informative=2, random_state=0)
    grid = {"C": list(np.logspace(-3, 3, n_candidates))}
    reference = _halving_reference(LogisticRegression(max_iter=50), grid, X, y, cv=3, random_state=0, **kwargs)
    hs = halving.HalvingSpec(**kwargs)
    ours = halving.schedule(hs, n_candidates=n_candidates, n_samples=n_samples, n_splits=3, n_classes=2)
    assert ours.n_resources == reference.n_resources_
    assert ours.n_candidates == reference.n_candidates_


def test_detail_page_shows_the_rounds_and_their_chart(client: Any) -> None:
    from django.contrib.auth.models import User
    from django.urls import reverse

    user = User.objects.create_user("owner", password="a-long-test-password")
    client.force_login(user)
    search = run_inline(create_search({
        "estimator": "LogisticRegression", "param_grid": {"C": [0.01, 0.1, 1, 10]}, "cv": 3,
        "dataset": "breast_cancer", "strategy": "halving", "halving": {"factor": 2},
    }, owner=user))  # fmt: skip
    body = client.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "Successive halving rounds" in body and 'id="chart-rounds-plot"' in body
    rounds = Candidate.objects.filter(search=search).order_by("index").values_list("round", "score")
    for i in range(3):
        best = max(s for it, s in rounds if it == i and s is not None)
        assert f"{best:.4f}" in body
    board = client.get(reverse("search-leaderboard", args=[search.pk])).content.decode()
    assert ">Round</th>" in board and board.count("<tr") == 1 + 7  # header + every candidate of every round
    figure = client.get(reverse("search-chart", args=[search.pk, "rounds"])).json()
    assert len(figure["data"]) == 4  # one line per candidate, as far as it was kept
    assert sorted(len(t["x"]) for t in figure["data"]) == [1, 1, 2, 3]

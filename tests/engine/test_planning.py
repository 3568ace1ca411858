"""`plan_for_data`: the one data-dependent planning step (checks, 'exhaust' candidates, halving schedule).

No database: the engine is plain Python. The rounds are compared with scikit-learn's own halving search
fitted on the same data, not with our formula."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import pytest
import scipy.stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import HalvingRandomSearchCV

from project.cluster import ROOT
from search.engine import datasets
from search.engine.spec import SpecError, parse_spec
from search.engine.validate import DataPlan, Plan, plan_for_data, validate_spec

EXHAUST = {
    "estimator": "LogisticRegression", "dataset": "iris", "cv": 3, "strategy": "halving", "random_state": 0,
    "param_distributions": {"C": {"distribution": "loguniform", "args": [0.01, 100]}},
}  # fmt: skip


def planned(spec: dict[str, Any], max_fits: int | None = None) -> tuple[Plan, DataPlan]:
    plan = validate_spec(parse_spec(spec))
    return plan, plan_for_data(plan, datasets.load_builtin("iris"), max_fits=max_fits)


def test_an_exhaust_halving_plan_draws_and_schedules_as_halving_random_search_cv() -> None:
    plan, dp = planned(EXHAUST)
    iris = datasets.load_builtin("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = HalvingRandomSearchCV(
            LogisticRegression(), {"C": scipy.stats.loguniform(0.01, 100)}, n_candidates="exhaust", factor=3,
            cv=3, random_state=0, refit=False,
        ).fit(iris.X, iris.y)  # fmt: skip
    assert dp.schedule is not None
    assert dp.plan.n_candidates == reference.n_candidates_[0]  # drawn for the data set,
    assert plan.n_candidates == 10  # not validate_spec's provisional ten
    assert dp.schedule.n_candidates == list(reference.n_candidates_)
    assert dp.schedule.n_resources == list(reference.n_resources_)
    assert dp.schedule.n_iterations == reference.n_iterations_
    first = reference.cv_results_["params"][: reference.n_candidates_[0]]
    assert [c["C"] for c in dp.plan.candidates] == pytest.approx([c["C"] for c in first])
    assert (dp.n_samples, dp.n_classes) == (150, 3)
    assert dp.n_candidates == sum(reference.n_candidates_) and dp.n_fits == dp.n_candidates * 3
    assert dp.first_round == dp.plan.candidates  # the resource is rows: the parameters are unchanged


def test_a_grid_plan_is_unchanged_and_has_no_schedule() -> None:
    plan, dp = planned({"estimator": "SVC", "dataset": "iris", "param_grid": {"C": [1, 10]}, "cv": 3})
    assert dp.plan is plan and dp.schedule is None and dp.n_candidates == 2 and dp.n_fits == 6
    assert dp.first_round == plan.candidates and dp.n_classes == 3


def test_a_budget_resource_sets_the_first_round_budget() -> None:
    spec = {"estimator": "RandomForestClassifier", "dataset": "iris", "cv": 3, "strategy": "halving",
            "param_grid": {"max_depth": [2, 3, 4]}, "halving": {"resource": "n_estimators", "min_resources": 5,
                                                                "max_resources": 15}}  # fmt: skip
    _, dp = planned(spec)
    assert dp.schedule is not None and dp.schedule.n_resources == [5, 15]
    assert dp.first_round == [{"max_depth": d, "n_estimators": 5} for d in (2, 3, 4)]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"cv": 60},
            "cv.n_splits",
            "60 stratified folds need at least 60 rows of every class; the smallest class "
            "has 50. Lower n_splits or use a larger data set.",
        ),
        ({"halving": {"min_resources": 400}}, "halving.min_resources", "greater than max_resources=150"),
        ({"scoring": "f1"}, "scoring", "f1_macro"),
    ],
)
def test_data_checks_raise_spec_errors_naming_the_field(changes: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(SpecError) as err:
        planned({**EXHAUST, **changes})
    assert err.value.field == field and words in err.value.message, err.value


def test_exhaust_over_the_fit_limit_is_refused() -> None:
    with pytest.raises(SpecError) as err:
        planned(EXHAUST, max_fits=10)
    assert err.value.field == "halving.n_candidates"
    assert err.value.message == (
        "'exhaust' samples 8 candidates for this data set (24 fits in the first round); the limit is 10 "
        "(FANOUT_MAX_FITS). Give an integer."
    )


def test_validation_and_planning_import_without_django() -> None:
    code = (
        "import sys, search.engine.spec, search.engine.validate\n"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

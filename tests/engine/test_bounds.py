"""Bounds on what a spec may ask for, so that sizing and sampling never outlast a request: halving rounds,
sampled candidates, generated data, processes. Each refusal is a SpecError naming the field.

Pure engine, no database. Where a number is compared it comes from scikit-learn itself (HalvingGridSearchCV's
rounds) or from the input (the grid's size), never from our own formula."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.stats
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.tree import DecisionTreeClassifier

from search.engine import datasets, guards, halving, registry, sampling
from search.engine.fits import single_process, without_n_jobs
from search.engine.spec import SpecError, parse_spec
from search.engine.validate import plan_for_data, validate_spec

BASE: dict[str, Any] = {"estimator": "SVC", "dataset": "iris", "cv": 3}
HALVING: dict[str, Any] = {**BASE, "strategy": "halving", "param_grid": {"C": [1, 10, 100]}}
RANDOM: dict[str, Any] = {
    **BASE, "strategy": "random", "n_iter": 1000,
    "param_distributions": {"C": {"distribution": "loguniform", "args": [0.01, 100]}},
}  # fmt: skip


def refused(data: dict[str, Any], *, max_fits: int | None = 1_000_000) -> SpecError:
    """The SpecError the spec gets from parsing, the size guards, the safety guards or validation."""
    with pytest.raises(SpecError) as err:
        s = parse_spec(data)
        guards.check_size(s, max_fits)
        guards.check_params_safe(s)
        validate_spec(s)
    return err.value


# --- halving: the factor, the number of rounds, the fits of every round ---------------------------------


@pytest.mark.parametrize("factor", [1.0000000000000002, 1.01, 1.09, float("inf")])
def test_a_halving_factor_near_one_is_refused_before_any_round_is_computed(factor: float) -> None:
    """1.0000000000000002 made the schedule build 5 × 10^15 rounds (memory ran out); 1.01 a hundred times the
    first round's fits."""
    err = refused({**HALVING, "halving": {"factor": factor}})
    assert err.field == "halving.factor" and "at least 1.1" in err.message, err


@pytest.mark.parametrize("factor", [1.1, 3, 10**400])
def test_factors_from_1_1_up_are_valid_halving_searches(factor: float) -> None:
    s = parse_spec({**HALVING, "halving": {"factor": factor}})
    guards.check_size(s, 1_000_000)
    assert validate_spec(s).n_candidates == 3


def test_more_rounds_than_the_limit_are_refused_before_the_grid_is_listed() -> None:
    grid = {"C": list(range(1, 20_001))}  # at factor 1.1: 1 + log(20,000) / log(1.1) rounds, above 100
    err = refused({**HALVING, "param_grid": grid, "halving": {"factor": 1.1}})
    assert err.field == "halving.factor" and f"rounds; the limit is {halving.MAX_ROUNDS}" in err.message, err
    fewer = parse_spec({**HALVING, "param_grid": {"C": list(range(1, 1_001))}, "halving": {"factor": 1.1}})
    guards.check_size(fewer, 1_000_000)  # 73 rounds: allowed


def test_the_fits_of_every_round_count_against_the_limit() -> None:
    """Round 0 (8 × 3 = 24 fits) is under the limit; all rounds together are not. The total is scikit-learn's:
    HalvingGridSearchCV fitted on the same data."""
    grid = {"max_depth": [1, 2, 3, 4, 5, 6, 7, 8]}
    spec = {**HALVING, "estimator": "DecisionTreeClassifier", "param_grid": grid, "halving": {"factor": 2}}
    iris = datasets.load_builtin("iris")
    reference = HalvingGridSearchCV(DecisionTreeClassifier(), grid, factor=2, cv=3, refit=False).fit(iris.X, iris.y)
    total = sum(reference.n_candidates_) * 3
    assert total > 8 * 3
    plan = validate_spec(parse_spec(spec))
    assert plan_for_data(plan, iris, max_fits=total).n_fits == total
    with pytest.raises(SpecError) as err:
        plan_for_data(plan, iris, max_fits=total - 1)
    assert err.value.field == "halving.factor"
    assert f"have {total:,} fits in all" in err.value.message and "FANOUT_MAX_FITS" in err.value.message


def test_a_schedule_of_too_many_rounds_is_refused_not_built() -> None:
    """For 'exhaust' sampling the candidates are only known with the data: the schedule checks the rounds
    before it builds any list."""
    hs = halving.HalvingSpec(factor=1.1)
    with pytest.raises(halving.TooManyRounds):
        halving.schedule(hs, n_candidates=10**9, n_samples=10**6, n_splits=3, n_classes=2)


# --- sampling: fast distributions only, sized before drawing, a deadline ---------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [("studentized_range", [3, 10]), ("ksone", [1000]), ("gausshyper", [13, 3, 2, 5]), ("zipf", [1.0001])],
)
def test_slow_distributions_are_refused(name: str, args: list[float]) -> None:
    """studentized_range takes about 60 ms a draw: n_iter 100,000 sampled for hours, before any size check."""
    err = refused({**RANDOM, "n_iter": 20, "param_distributions": {"C": {"distribution": name, "args": args}}})
    assert err.field == "param_distributions.C" and "samples too slowly" in err.message, err
    assert "loguniform" in err.message  # what is allowed instead


ARGS: dict[str, list[float]] = {
    "bernoulli": [0.5], "beta": [2, 3], "binom": [5, 0.5], "chi2": [3], "gamma": [2], "geom": [0.5], "lognorm": [1],
    "loguniform": [0.01, 1], "nbinom": [5, 0.5], "pareto": [2], "poisson": [3], "powerlaw": [2], "randint": [1, 9],
    "reciprocal": [0.01, 1], "t": [3], "triang": [0.5], "truncexpon": [2], "weibull_min": [2],
}  # fmt: skip


@pytest.mark.parametrize("name", sampling.ALLOWED)
def test_every_allowed_distribution_samples_as_randomized_search_cv(name: str) -> None:
    from sklearn.model_selection import ParameterSampler

    dist = {"x": {"distribution": name, "args": ARGS.get(name, [])}}
    ours = sampling.sample((dist,), 20, 3)
    theirs = list(ParameterSampler({"x": getattr(scipy.stats, name)(*ARGS.get(name, []))}, 20, random_state=3))
    assert [c["x"] for c in ours] == [c["x"] for c in theirs]


def test_sampling_stops_at_its_deadline_naming_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "SAMPLE_SECONDS", 0.0)
    err = refused(RANDOM)
    assert err.field == "n_iter" and err.message.startswith("drawing 1,000 candidates stopped after 0 s with "), err
    drawn = int(err.message.split(" with ")[1].split(" drawn")[0].replace(",", ""))
    assert 1 <= drawn < 1000  # it stopped: the other candidates were never drawn
    sampled = {**RANDOM, "strategy": "halving", "halving": {"n_candidates": 1000}}
    del sampled["n_iter"]
    assert refused(sampled).field == "halving.n_candidates"


def test_exhaust_is_sized_before_it_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    """200,000 rows: 'exhaust' would draw 16,666 candidates; above the limit it is refused without drawing one
    (with no time to draw, a draw would be refused for its deadline instead)."""
    spec = {**RANDOM, "estimator": "LogisticRegression", "strategy": "halving"}
    del spec["n_iter"]
    plan = validate_spec(parse_spec(spec))
    data = datasets.Data(X=np.zeros((200_000, 1)), y=np.arange(200_000) % 2, feature_names=["x"], target_name="y")
    monkeypatch.setattr(sampling, "SAMPLE_SECONDS", 0.0)
    with pytest.raises(SpecError) as err:
        plan_for_data(plan, data, max_fits=1000)
    assert err.value.field == "halving.n_candidates" and "'exhaust' samples 16,666 candidates" in err.value.message


def test_lists_too_many_to_sample_from_are_a_spec_error() -> None:
    """Seven lists of 1,000 values: 10^21 combinations, beyond what scikit-learn's sampler can index
    (OverflowError before)."""
    lists = {k: list(range(1, 1001)) for k in ("C", "gamma", "tol", "degree", "coef0", "cache_size", "max_iter")}
    err = refused({**RANDOM, "n_iter": 5, "param_distributions": lists})
    assert err.field == "param_distributions" and "1e+21 combinations" in err.message, err


def test_a_grid_larger_than_an_index_is_counted_and_refused() -> None:
    grid = {k: list(range(1, 1001)) for k in ("C", "gamma", "tol", "degree", "coef0", "cache_size", "max_iter")}
    err = refused({**BASE, "param_grid": grid})
    assert err.field == "param_grid" and f"{10**21:,} × 3" in err.message, err


# --- generated data: every option that sizes an array, and one seed for every process ------------------


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("make_regression", {"n_samples": 100, "n_features": 2, "n_targets": 10**7}, "y: 100 × 10,000,000"),
        ("make_blobs", {"centers": 10**8}, "centers = 100,000,000 clusters"),
        ("make_classification", {"n_classes": 10**6, "n_informative": 20}, "= 2,000,000 clusters"),
        ("make_regression", {"n_samples": 5000, "n_features": 2000, "effective_rank": 10}, "low-rank 5,000 × 2,000"),
        ("make_classification", {"n_samples": 10_000, "n_features": 4000, "n_informative": 4000}, "n_informative"),
    ],
)
def test_sizes_hidden_in_generator_options_are_refused(name: str, options: dict[str, Any], words: str) -> None:
    """Each passed the old n_samples × n_features check (make_regression with 10^7 targets filled 8 GB)."""
    err = refused({**BASE, "estimator": "Ridge" if name == "make_regression" else "SVC",
                   "dataset": {"name": name, "options": options}})  # fmt: skip
    assert err.field == "dataset.options" and words in err.message, err
    with pytest.raises(datasets.DatasetError):  # and the runner, rebuilding a stored spec, refuses it too
        datasets.generate(name, options)


def test_generator_options_of_a_sane_size_still_generate() -> None:
    assert datasets.generate("make_regression", {"n_samples": 50, "n_targets": 3}).y.shape == (50, 3)
    assert datasets.generate("make_blobs", {"n_samples": 60, "centers": 6}).n_samples == 60
    blobs = datasets.generate("make_blobs", {"n_samples": [10, 20, 30]})
    assert sorted(np.bincount(blobs.y)) == [10, 20, 30]


def test_generated_data_with_a_null_seed_is_refused() -> None:
    """random_state null: every process that rebuilds the data draws different rows under one data key."""
    err = refused({**BASE, "dataset": {"name": "make_moons", "options": {"random_state": None}}})
    assert err.field == "dataset.options.random_state" and "integer seed" in err.message
    with pytest.raises(datasets.DatasetError, match="random_state null"):
        datasets.generate("make_moons", {"random_state": None})
    assert parse_spec({**BASE, "dataset": "make_moons"}).dataset.options["random_state"] == 0  # absent: 0
    assert datasets.generator_options("make_moons")["random_state"] == 0  # what the form shows as the default


# --- processes: the search's n_jobs is bounded; an estimator's own n_jobs is Fanout's -------------------


@pytest.mark.parametrize("n_jobs", [1024, -257, 257, 100_000])
def test_n_jobs_beyond_the_setting_is_refused(n_jobs: int) -> None:
    err = refused({**BASE, "n_jobs": n_jobs})
    assert err.field == "n_jobs" and "from -256 to 256" in err.message and "FANOUT_MAX_N_JOBS" in err.message


def test_n_jobs_within_the_setting_is_accepted() -> None:
    for n_jobs in (-256, -1, 1, 256):
        guards.check_size(parse_spec({**BASE, "n_jobs": n_jobs}), 1_000_000)
    guards.check_size(parse_spec({**BASE, "n_jobs": 1024}), 1_000_000, max_n_jobs=1024)  # a larger setting


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"estimator": "RandomForestClassifier", "params": {"n_jobs": -1}}, "params.n_jobs"),
        ({"estimator": "RandomForestClassifier", "param_grid": {"n_jobs": [1, 2]}}, "param_grid.n_jobs"),
        ({"estimator": ["StandardScaler", "KNeighborsClassifier"], "params": {"kneighborsclassifier__n_jobs": 4}},
         "params.kneighborsclassifier__n_jobs"),
        ({"estimator": "KNeighborsClassifier", "strategy": "random", "param_distributions": {"n_jobs": [1, 4]}},
         "param_distributions.n_jobs"),
        ({"estimator": "RandomForestClassifier", "strategy": "halving", "param_grid": {"max_depth": [2, 3]},
          "halving": {"resource": "n_jobs", "max_resources": 8}}, "halving.resource"),
    ],
)  # fmt: skip
def test_an_estimators_own_n_jobs_is_refused(changes: dict[str, Any], field: str) -> None:
    err = refused({**BASE, **changes})
    assert err.field == field and "Fanout sets the processes" in err.message and "search's n_jobs" in err.message


def test_the_runner_fits_every_step_with_one_process() -> None:
    """What a spec stored before the guard may hold: an estimator n_jobs in its params or candidates."""
    steps = (("StandardScaler", "sklearn.preprocessing"), ("RandomForestClassifier", "sklearn.ensemble"))
    est = single_process(registry.build(steps, {"randomforestclassifier__n_jobs": -1}))
    assert est.get_params()["randomforestclassifier__n_jobs"] == 1
    knn = single_process(registry.build((("KNeighborsClassifier", "sklearn.neighbors"),)))
    assert knn.get_params()["n_jobs"] == 1  # None (which a parallel_config could widen) becomes 1
    assert without_n_jobs({"n_jobs": 8, "randomforestclassifier__n_jobs": 8, "max_depth": 3}) == {"max_depth": 3}

"""Validation of a parsed `SearchSpec` with scikit-learn's own checks, and the data-dependent planning step.

`validate_spec` builds the estimator, the grid (or the sampled candidates), the CV splitter and the scorers
with scikit-learn's own validation and returns a `Plan`, without the data set. `plan_for_data` then checks
the plan against the data set once it is read (folds against classes, target against estimator, scorer
against target), draws HalvingRandomSearchCV's candidates for n_candidates="exhaust" and builds the halving
schedule, as scikit-learn's halving search computes its rounds once in `_run_search`.
Every failure is a `SpecError` (search.engine.spec) that names the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import ParameterGrid

from . import datasets, folds, guards, halving, holdout, registry, sampling
from .spec import SearchSpec, SpecError


@dataclass(frozen=True)
class Plan:
    """A validated spec, ready to run: steps resolved, candidates enumerated in GridSearchCV's order."""

    spec: SearchSpec
    steps: tuple[tuple[str, str], ...]  # (class name, public module)
    task: str  # "classification" or "regression"
    candidates: list[dict[str, Any]]

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    @property
    def n_fits(self) -> int:
        return self.n_candidates * self.spec.cv.n_splits


def _resolve_steps(names: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], str]:
    infos = []
    for i, name in enumerate(names):
        where = "estimator" if len(names) == 1 else f"estimator[{i}]"
        try:
            infos.append(registry.lookup(name))
        except KeyError as exc:
            raise SpecError(where, str(exc.args[0])) from None
    *head, last = infos
    if last.kind not in ("classifier", "regressor"):
        where = "estimator" if not head else f"estimator[{len(head)}]"
        raise SpecError(where, f"{last.name} is a {last.kind}; the last step must be a classifier or regressor")
    for i, info in enumerate(head):
        if info.kind != "transformer":
            raise SpecError(
                f"estimator[{i}]", f"{info.name} is a {info.kind}; steps before the last must be transformers"
            )
    task = "classification" if last.kind == "classifier" else "regression"
    return tuple((i.name, i.module) for i in infos), task


def _validate_estimator_params(est: BaseEstimator, where: str) -> None:
    """scikit-learn's own parameter-constraint check, on the estimator and every nested step."""
    from sklearn.utils._param_validation import InvalidParameterError

    objs = [est, *[step for _, step in getattr(est, "steps", [])]]
    for obj in objs:
        validate = getattr(obj, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except InvalidParameterError as exc:
            raise SpecError(where, str(exc)) from None


def _check_param_name(est: BaseEstimator, valid: dict[str, Any], key: str, where: str) -> None:
    if key in valid:
        return
    import difflib

    lowered = {k.lower(): k for k in valid}
    close = [lowered[c] for c in difflib.get_close_matches(key.lower(), lowered, n=3, cutoff=0.5)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise SpecError(
        f"{where}.{key}",
        f"{type(est).__name__} has no parameter {key!r}.{hint} Valid parameters: {', '.join(sorted(valid))}",
    )


def _set_params(est: BaseEstimator, params: dict[str, Any], where: str) -> BaseEstimator:
    valid = est.get_params(deep=True)
    for key in params:
        _check_param_name(est, valid, key, where)
    try:
        est.set_params(**params)
    except (TypeError, ValueError) as exc:
        raise SpecError(where, str(exc)) from None
    return est


def scorer_task(name: str) -> str:
    """`classification`, `regression` or `clustering`, from the module of the scorer's metric."""
    from sklearn.metrics import get_scorer

    module = get_scorer(name)._score_func.__module__
    if module.endswith("_regression"):
        return "regression"
    if ".cluster." in module:
        return "clustering"
    return "classification"


def scorers_for(task: str) -> list[str]:
    """Scorer names that make sense for a task (clustering scorers compare labels: classification)."""
    return [n for n in get_scorer_names() if (scorer_task(n) == "regression") == (task == "regression")]


def _check_scoring(spec: SearchSpec, task: str) -> None:
    known = set(get_scorer_names())
    names = spec.scoring if isinstance(spec.scoring, tuple) else ((spec.scoring,) if spec.scoring else ())
    for name in names:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SpecError("scoring", f"unknown scorer {name!r}.{hint} See sklearn.metrics.get_scorer_names().")
        kind = scorer_task(name)
        if (kind == "regression") != (task == "regression"):
            raise SpecError(
                "scoring",
                f"{name!r} is a {kind} scorer and {spec.estimator[-1]} is a {task} estimator; "
                f"use one of: {', '.join(scorers_for(task)[:12])}, …",
            )


def validate_spec(spec: SearchSpec) -> Plan:
    """Build everything the search needs without fitting anything; raise SpecError on the first problem."""
    steps, task = _resolve_steps(spec.estimator)
    base = registry.build(steps)
    _set_params(base, spec.params, "params")
    _validate_estimator_params(base, "params")
    if spec.param_distributions:  # random search, or halving over sampled candidates
        candidates = _random_candidates(spec, base, _sample_count(spec))
    else:
        candidates = _grid_candidates(spec, base)
    if spec.halving is not None:
        _check_halving(spec, base, candidates)
    _check_scoring(spec, task)
    if spec.holdout is not None and spec.holdout.stratify and task != "classification":
        raise SpecError(
            "holdout.stratify",
            f"stratifies by class, so only for classifiers; {spec.estimator[-1]} is a {task} estimator",
        )
    assert is_classifier(base) or is_regressor(base)
    return Plan(spec=spec, steps=steps, task=task, candidates=candidates)


def _validate_values(base: BaseEstimator, pairs: Iterable[tuple[str, Any]], where: str) -> None:
    """Each (parameter, value) alone against the estimator's constraints, with scikit-learn's own
    `validate_parameter_constraints` on that one parameter (what `_validate_params` runs for each): no clone
    per value, so a grid of 500,000 values takes seconds, not many minutes, in a web request."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    valid = base.get_params(deep=True)
    for key, value in pairs:
        _check_param_name(base, valid, key, where)
        owner, name = _param_owner(base, key)
        constraints = getattr(owner, "_parameter_constraints", None) or {}
        if name not in constraints:  # not described (or a whole step): set it on a copy and validate that
            est = _set_params(clone(base), {key: value}, where)
            _validate_estimator_params(est, f"{where}.{key}")
            continue
        try:
            validate_parameter_constraints({name: constraints[name]}, {name: value}, type(owner).__name__)
        except InvalidParameterError as exc:
            raise SpecError(f"{where}.{key}", str(exc)) from None


def _param_owner(est: BaseEstimator, key: str) -> tuple[Any, str]:
    """The object a (possibly `step__param`) key sets, and its own name there; nested deeper: the estimator."""
    step, sep, rest = key.partition("__")
    steps = dict(getattr(est, "steps", []))
    if sep and step in steps and "__" not in rest:
        return steps[step], rest
    return (est, key) if not sep else (None, key)


# Sampled halving whose round-0 size needs the data set (n_candidates="exhaust" over n_samples) is first
# validated on this many samples; `sampled_for_data` draws the real number once the data set is loaded.
PROVISIONAL_SAMPLES = 10


def _sample_count(spec: SearchSpec) -> int:
    """Candidates to sample: `n_iter`, or HalvingRandomSearchCV's `n_candidates` where the data is not needed."""
    hs = spec.halving
    if hs is None:
        return spec.n_iter
    if needs_data_to_sample(spec):
        return PROVISIONAL_SAMPLES
    n = hs.sample_size(n_samples=None, n_splits=spec.cv.n_splits, n_classes=None)
    assert n is not None
    return n


def needs_data_to_sample(spec: SearchSpec) -> bool:
    """True when the number of sampled candidates depends on the data set (see `sampled_for_data`)."""
    hs = spec.halving
    if hs is None or not spec.param_distributions or hs.n_candidates != "exhaust":
        return False
    return hs.resource == "n_samples" and not (isinstance(hs.min_resources, int) and isinstance(hs.max_resources, int))


def sampled_for_data(plan: Plan, *, n_samples: int, n_classes: int | None, max_fits: int | None = None) -> Plan:
    """The plan of a halving search over sampled candidates with n_candidates="exhaust", its candidates drawn
    as HalvingRandomSearchCV draws them for this data set (max_resources // min_resources); others unchanged.
    Their number depends on the data set's size, so the size limit is checked again, before drawing them."""
    if not needs_data_to_sample(plan.spec):
        return plan
    hs = plan.spec.halving
    assert hs is not None
    n = hs.sample_size(n_samples=n_samples, n_splits=plan.spec.cv.n_splits, n_classes=n_classes)
    assert n is not None
    fits = n * plan.spec.cv.n_splits
    if max_fits is not None and fits > max_fits:
        raise SpecError(
            "halving.n_candidates",
            f"'exhaust' samples {n:,} candidates for this data set ({fits:,} fits in the first round); the limit "
            f"is {max_fits:,} (FANOUT_MAX_FITS). Give an integer.",
        )
    base = registry.build(plan.steps)
    _set_params(base, plan.spec.params, "params")
    return replace(plan, candidates=_random_candidates(plan.spec, base, n))


def _random_candidates(spec: SearchSpec, base: BaseEstimator, n_iter: int) -> list[dict[str, Any]]:
    """`RandomizedSearchCV`'s candidates (scikit-learn's `ParameterSampler`), each value validated."""
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        RandomizedSearchCV(base, list(spec.param_distributions), n_iter=n_iter)._validate_params()
    except InvalidParameterError as exc:
        raise SpecError("param_distributions", str(exc)) from None
    valid = base.get_params(deep=True)
    for di, dist in enumerate(spec.param_distributions):
        where = "param_distributions" if len(spec.param_distributions) == 1 else f"param_distributions[{di}]"
        for key in dist:
            _check_param_name(base, valid, key, where)
    try:
        candidates = sampling.sample(spec.param_distributions, n_iter, spec.random_state)
    except sampling.SamplingTooSlow as exc:
        raise SpecError("n_iter" if spec.halving is None else "halving.n_candidates", str(exc)) from None
    except sampling.DistributionError as exc:
        raise SpecError("param_distributions", str(exc)) from None
    seen: set[tuple[str, str]] = set()
    pairs = []
    for c in candidates:
        for key, value in c.items():
            if (key, repr(value)) not in seen:
                seen.add((key, repr(value)))
                pairs.append((key, value))
    _validate_values(base, pairs, "param_distributions")
    return candidates


def _grid_candidates(spec: SearchSpec, base: BaseEstimator) -> list[dict[str, Any]]:
    for gi, grid in enumerate(spec.param_grid):
        where = "param_grid" if len(spec.param_grid) == 1 else f"param_grid[{gi}]"
        try:
            list(ParameterGrid(grid))  # scikit-learn's own grid validation
        except (TypeError, ValueError) as exc:
            raise SpecError(where, str(exc)) from None
        _validate_values(base, [(key, value) for key, values in grid.items() for value in values], where)
    candidates = list(ParameterGrid(list(spec.param_grid)))
    if not candidates:
        raise SpecError("param_grid", "the grid has no candidates")
    return candidates


def _check_halving(spec: SearchSpec, base: BaseEstimator, candidates: list[dict[str, Any]]) -> None:
    """`HalvingGridSearchCV`'s (or `HalvingRandomSearchCV`'s) own parameter validation, plus its checks on
    the budget parameter."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV
    from sklearn.utils._param_validation import InvalidParameterError

    hs = spec.halving
    assert hs is not None
    try:
        if spec.param_distributions:
            HalvingRandomSearchCV(base, list(spec.param_distributions), **hs.to_dict())._validate_params()
        else:
            HalvingGridSearchCV(base, list(spec.param_grid), **hs.to_dict())._validate_params()
    except InvalidParameterError as exc:
        raise SpecError("halving", str(exc)) from None
    if hs.resource == "n_samples":
        return
    if hs.resource not in base.get_params(deep=True):
        raise SpecError(
            "halving.resource",
            f"{hs.resource!r} is not a parameter of {type(base).__name__}; use 'n_samples' or a budget parameter "
            "such as n_estimators or max_iter",
        )
    if any(hs.resource in c for c in candidates):
        where = "param_distributions" if spec.param_distributions else "param_grid"
        raise SpecError("halving.resource", f"{hs.resource!r} is the budget; remove it from {where}")
    max_r = hs.max_resources
    assert isinstance(max_r, int)
    _validate_values(base, [(hs.resource, max_r)], "halving.max_resources")


# ---------------------------------------------------------------------------------------------
# Planning for the data set: once per request or submit, after the data is read
# ---------------------------------------------------------------------------------------------


def classes_of(plan: Plan, data: datasets.Data) -> int | None:
    """The number of classes of the target for a classifier (what halving's "smallest" counts); None for a
    regressor."""
    return len(np.unique(data.y)) if plan.task == "classification" else None


def check_data_fits_cv(plan: Plan, data: datasets.Data, *, cv_rows: bool = True) -> None:
    """Folds against rows and classes (explicit splits against the rows, groups against the data set's groups:
    `folds.check_data`, when `data` is what cross-validation sees, not the whole data set before its holdout), the
    target against the estimator, each scorer against the target."""
    guards.check_target(plan.task, plan.spec.estimator[-1], data.y)
    cv = plan.spec.cv
    k = cv.n_splits
    if cv_rows:
        folds.check_data(cv, data)
    splitter = cv.splits is None  # explicit splits are the user's own: as for GridSearchCV, no count is checked
    if splitter and k > data.n_samples:
        raise SpecError("cv.n_splits", f"{k} folds need at least {k} rows; the data set has {data.n_samples}")
    if plan.task == "classification":
        _, counts = np.unique(data.y, return_counts=True)
        if len(counts) < 2:
            raise SpecError("dataset", "the target has a single class; a classifier needs at least two")
        if splitter and not cv.groups and k > counts.min():  # StratifiedKFold's own requirement
            raise SpecError(
                "cv.n_splits",
                f"{k} stratified folds need at least {k} rows of every class; the smallest class has "
                f"{counts.min()}. Lower n_splits or use a larger data set.",
            )
    elif not np.issubdtype(data.y.dtype, np.number):
        raise SpecError("dataset", "a regressor needs a numeric target; this target holds text labels")
    guards.check_scoring_on_target(plan.spec, plan.task, data.y)


@dataclass(frozen=True)
class DataPlan:
    """A plan checked against its data set: `plan`'s candidates are the ones that run first (for halving over
    n_candidates="exhaust", drawn for this data set), `schedule` the halving rounds (None for grid and random
    search), `n_samples` the rows cross-validation sees (the training part under a holdout), `n_classes` its
    classes (None for a regressor), `n_test` the held-out rows."""

    plan: Plan
    schedule: halving.Schedule | None
    n_samples: int
    n_classes: int | None
    n_test: int = 0

    @property
    def first_round(self) -> list[dict[str, Any]]:
        """The parameters of round 0 (for a budget resource, set to its first round's budget)."""
        if self.schedule is None:
            return self.plan.candidates
        hs = self.plan.spec.halving
        assert hs is not None
        return [halving.round_params(p, hs, self.schedule.n_resources[0]) for p in self.plan.candidates]

    @property
    def n_candidates(self) -> int:
        """Candidates over every round (each halving round counts its own)."""
        return sum(self.schedule.n_candidates) if self.schedule is not None else self.plan.n_candidates

    @property
    def n_fits(self) -> int:
        return self.n_candidates * self.plan.spec.cv.n_splits


def plan_for_data(plan: Plan, data: datasets.Data, *, max_fits: int | None) -> DataPlan:
    """The data-dependent step, run once per request or submit: `check_data_fits_cv`, then the candidates
    HalvingRandomSearchCV draws for this data set's size (n_candidates="exhaust"; refused before they are
    drawn above `max_fits` fits in the first round, the FANOUT_MAX_FITS setting), then the halving schedule
    (refused above `max_fits` fits over all its rounds). Raises SpecError."""
    check_data_fits_cv(plan, data, cv_rows=plan.spec.holdout is None)
    n_test = 0
    if plan.spec.holdout is not None:  # CV, the schedule and the candidates see the training part only
        data, test = holdout.split(data, plan.spec.holdout)
        n_test = test.n_samples
        folds.check_data(plan.spec.cv, data, held_out=n_test)  # explicit indices and groups: on their own fields
        try:
            check_data_fits_cv(plan, data)
        except SpecError as exc:
            raise SpecError(
                "holdout.test_size", f"holding out {n_test} of {data.n_samples + n_test} rows leaves too few: {exc}"
            ) from None
    n_classes = classes_of(plan, data)
    plan = sampled_for_data(plan, n_samples=data.n_samples, n_classes=n_classes, max_fits=max_fits)
    rounds = _halving_schedule(plan, n_samples=data.n_samples, n_classes=n_classes, max_fits=max_fits)
    return DataPlan(plan=plan, schedule=rounds, n_samples=data.n_samples, n_classes=n_classes, n_test=n_test)


def _halving_schedule(
    plan: Plan, *, n_samples: int, n_classes: int | None, max_fits: int | None = None
) -> halving.Schedule | None:
    """HalvingGridSearchCV's (or HalvingRandomSearchCV's) rounds for this data set (None for grid and random
    search), refused when all its rounds together have more than `max_fits` fits."""
    hs = plan.spec.halving
    if hs is None:
        return None
    k = plan.spec.cv.n_splits
    try:
        rounds = halving.schedule(
            hs, n_candidates=plan.n_candidates, n_samples=n_samples, n_splits=k, n_classes=n_classes
        )
    except halving.TooManyRounds as exc:
        raise SpecError("halving.factor", str(exc)) from None
    except halving.ScheduleError as exc:
        raise SpecError("halving.min_resources", str(exc)) from None
    fits = sum(rounds.n_candidates) * k
    if max_fits is not None and fits > max_fits:
        per_round = ", ".join(f"{n:,}" for n in rounds.n_candidates[:4]) + (", …" if rounds.n_iterations > 4 else "")
        raise SpecError(
            "halving.factor",
            f"its {rounds.n_iterations} rounds have {fits:,} fits in all (candidates per round: {per_round}; × "
            f"{k} folds); the limit is {max_fits:,} (FANOUT_MAX_FITS). Use a larger factor, or fewer candidates "
            "or folds.",
        )
    return rounds

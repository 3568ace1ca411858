"""Checks that keep a spec from doing harm or wasting a cluster, beyond scikit-learn's own validation.

- `check_size`: a search above a fit budget (or a halving search of more than `halving.MAX_ROUNDS` rounds)
  is refused with its count, before any candidate is listed or drawn; so is an `n_jobs` beyond `max_n_jobs`.
- `check_params_safe`: no parameter that writes to or reads from a path (`memory`), no pipeline
  parameter that replaces a whole step with a value from JSON, and no estimator `n_jobs` (Fanout sets the
  processes: the runner fits with one process per fit).
- `check_target`: a classifier needs class labels, not a continuous target.
- `check_scoring_on_target`: each scorer is tried on a constant predictor over the real target, so a
  binary-only scorer on three classes (or a log-scale metric on negative targets) is refused before
  anything is enqueued instead of failing every fit.

Pure: no Django. Every failure is a `SpecError` naming the field.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid

from . import halving
from .spec import SearchSpec, SpecError

MAX_N_JOBS = 256  # processes per unit, the default of FANOUT_MAX_N_JOBS (the runner also clamps to the cores)
PIPELINE_KEYS = {"steps", "memory", "transform_input"}
SCORING_SAMPLE_ROWS = 10_000
MAX_FLOAT_CLASSES = 20  # a float target with more distinct values than this (and than 10% of rows) is continuous


def count_candidates(spec: SearchSpec) -> int | None:
    """Candidates the spec asks for without listing them; None for a grid too malformed to count."""
    if getattr(spec, "strategy", "grid") == "random":
        return int(getattr(spec, "n_iter", 0))  # an upper bound: a small list-only space gives fewer
    if getattr(spec, "param_distributions", ()):  # halving over sampled candidates
        n = spec.halving.n_candidates if spec.halving else None
        return n if isinstance(n, int) else None  # "exhaust": known with the data set (services checks it)
    try:
        grid = ParameterGrid(list(spec.param_grid))
    except (TypeError, ValueError):
        return None  # validate_spec reports scikit-learn's own message for it
    # len(grid) without len(): above sys.maxsize len() raises OverflowError
    return sum(math.prod(len(v) for v in g.values()) for g in grid.param_grid)


def check_size(spec: SearchSpec, max_fits: int | None, *, max_n_jobs: int = MAX_N_JOBS) -> None:
    """Refuse a search of more than `max_fits` fits (candidates × folds), saying how many it has, a halving
    search of more rounds than `halving.MAX_ROUNDS` (computed, not built), and an `n_jobs` beyond
    ±`max_n_jobs` (the FANOUT_MAX_N_JOBS setting)."""
    if abs(spec.n_jobs) > max_n_jobs:
        raise SpecError(
            "n_jobs",
            f"expected a non-zero integer from -{max_n_jobs} to {max_n_jobs} (-1 = every core; the limit is "
            f"FANOUT_MAX_N_JOBS), got {spec.n_jobs!r}",
        )
    n = count_candidates(spec)
    if n is None:
        return
    fits = n * spec.cv.n_splits
    if max_fits is not None and fits > max_fits:
        random = bool(getattr(spec, "param_distributions", ()))
        sampled = "n_iter" if spec.strategy == "random" else "halving.n_candidates"
        folds = "cv.n_splits" if spec.cv.splits is None else "cv.splits"
        field = folds if spec.cv.n_splits > n else (sampled if random else "param_grid")
        raise SpecError(
            field,
            f"the {'search' if random else 'grid'} has {fits:,} fits (candidates × folds: {n:,} × "
            f"{spec.cv.n_splits:,}); the limit is {max_fits:,} (FANOUT_MAX_FITS). Use fewer values or folds, "
            "or split it into several searches.",
        )
    if spec.halving is not None and n > 0:  # the rounds in closed form, before any is built
        try:
            halving.check_rounds(n, spec.halving.factor)
        except halving.TooManyRounds as exc:
            raise SpecError("halving.factor", str(exc)) from None


def _param_sources(spec: SearchSpec) -> list[tuple[str, dict[str, Any]]]:
    named = [("params", dict(spec.params))]
    for i, grid in enumerate(spec.param_grid):
        named.append(("param_grid" if len(spec.param_grid) == 1 else f"param_grid[{i}]", grid))
    dists = list(getattr(spec, "param_distributions", ()) or ())
    for i, dist in enumerate(dists):
        named.append(("param_distributions" if len(dists) == 1 else f"param_distributions[{i}]", dist))
    return named


def check_params_safe(spec: SearchSpec) -> None:
    """No `memory` (a cache directory on the worker: a path from the user, and pickles read back from it),
    and in a pipeline no parameter that swaps a whole step or the step list for a JSON value."""
    steps = {name.lower() for name in spec.estimator}
    pipeline = len(spec.estimator) > 1
    if spec.halving is not None and _is_n_jobs(spec.halving.resource):
        raise SpecError("halving.resource", f"{spec.halving.resource!r} is not a budget; {_N_JOBS}")
    for where, params in _param_sources(spec):
        for key in params:
            if _is_n_jobs(key):
                raise SpecError(f"{where}.{key}", _N_JOBS)
            if key == "memory" or key.endswith("__memory"):
                raise SpecError(
                    f"{where}.{key}",
                    "caching fitted steps in a directory is not allowed (it would write to and unpickle from a "
                    "path on the worker); remove it",
                )
            if pipeline and "__" not in key and (key in PIPELINE_KEYS or key.split("-")[0] in steps):
                raise SpecError(
                    f"{where}.{key}",
                    f"{key!r} would replace a pipeline step or the pipeline itself; tune a step's own "
                    f"parameters as <step>__<parameter>, e.g. {spec.estimator[-1].lower()}__<parameter>",
                )


_N_JOBS = "Fanout sets the processes (one per fit); use the search's n_jobs"


def _is_n_jobs(key: str) -> bool:
    """An estimator's own process count, on the estimator or on a pipeline step (`<step>__n_jobs`)."""
    return key == "n_jobs" or key.endswith("__n_jobs")


def check_target(task: str, estimator: str, y: np.ndarray) -> None:
    """A classifier on a continuous target would make every distinct value a class."""
    if task != "classification" or y.dtype.kind not in "f":
        return
    finite = y[np.isfinite(y)]
    n_values = len(np.unique(finite))
    many = n_values > MAX_FLOAT_CLASSES and n_values > len(y) / 10  # 151.0, 75.0, … read as floats
    if finite.size and (many or not np.all(finite == np.round(finite))):
        raise SpecError(
            "dataset",
            f"{estimator} is a classifier and this data set's target is continuous (e.g. {float(finite[0]):g}); "
            "use a regressor, or a data set whose target holds class labels",
        )


def _sample(y: np.ndarray) -> np.ndarray:
    """Up to SCORING_SAMPLE_ROWS rows of y that include every class (and every extreme value)."""
    if len(y) <= SCORING_SAMPLE_ROWS:
        return y
    _, first = np.unique(y, return_index=True)
    keep = np.union1d(first[:SCORING_SAMPLE_ROWS], np.arange(SCORING_SAMPLE_ROWS))
    if y.dtype.kind in "iuf":
        keep = np.union1d(keep, [int(np.argmin(y)), int(np.argmax(y))])
    return y[keep]


def check_scoring_on_target(spec: SearchSpec, task: str, y: np.ndarray) -> None:
    """Score a constant predictor on the real target with each scorer; one that raises cannot fit this task."""
    names = spec.scoring if isinstance(spec.scoring, tuple) else ((spec.scoring,) if spec.scoring else ())
    if not names:
        return
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.metrics import get_scorer, get_scorer_names

    target = _sample(y)
    X = np.zeros((len(target), 1))
    dummy = (DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor()).fit(X, target)
    n_classes = len(np.unique(target)) if task == "classification" else 0
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_scorer(name)(dummy, X, target)
        except Exception as exc:  # noqa: BLE001 - any failure of the scorer on this target is the user's answer
            variants = [n for n in get_scorer_names() if n.startswith(f"{name}_") and not n.endswith("_samples")]
            if n_classes > 2 and variants:
                hint = f"; it is for two classes and this target has {n_classes}: use one of {', '.join(variants)}"
            else:
                hint = "; choose another scorer (see sklearn.metrics.get_scorer_names())"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpecError("scoring", f"{name!r} cannot score this data set's target ({first_line}){hint}") from None

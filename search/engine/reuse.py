"""Work not done twice: path reuse inside a unit, and fit keys for reuse across searches. Pure (no Django).

**Path reuse.** Where candidates differ only in a parameter that grows the model (`n_estimators` of a
forest or boosting ensemble, `max_iter` of HistGradientBoosting), one model per (other parameters,
fold) is grown through the values in increasing order and scored at each size: fit with 50 trees,
score, `set_params(n_estimators=100, warm_start=True)`, fit again (adds 50 trees), score, … The
largest model costs what its independent fit costs; every smaller one comes almost free.

That is only done where it gives exactly the scores of independent fits, which holds for the estimators
in `PATH_REUSE` with an integer `random_state` (scikit-learn 1.9, read in `ensemble/_forest.py`,
`_bagging.py`, `_gb.py` and `_hist_gradient_boosting/gradient_boosting.py`):
- forests and bagging draw one seed per member from `check_random_state(random_state)`; a warm start
  skips the seeds of the members it has, so member *k* gets the seed it gets in an independent fit;
- gradient boosting keeps its `_rng` across warm starts and recomputes the running predictions from the
  stages it has, so stage *k* sees the same gradients and the same subsample and feature draws;
- HistGradientBoosting keeps its seed and its feature-subsampling generator across warm starts.
Each one is proven by an oracle test against `GridSearchCV(refit=False)` (tests/engine/test_path_reuse.py).
Everything else is fitted independently: other estimators (warm-started linear models and MLPs stop
elsewhere, tried and different), pipelines, `random_state` not an int (None can never repeat), a grid or
fixed `warm_start`, nested parameters, early stopping (it depends on the path taken: tried and different
for GradientBoosting with `n_iter_no_change`), bagging's `oob_score` (refused with warm starts).

**Fit keys.** `fit_key` is the sha256 of a canonical JSON of everything a fit's scores depend on: the
estimator steps, the full parameters, the data set's content key, the CV (`cv` dict, explicit splits as the
sha256 of their indices; fold index; any other split setting of the job such as halving's `subsample`),
scoring, `return_train_score`, the path-reuse setting (a grown fit's time is what its added trees cost) and
the versions of scikit-learn, numpy and scipy. Two fits with the same key give the same scores, so a stored
one can be copied instead of recomputed (see `search.services.reuse`). Only a fit that repeats has a key:
every `random_state` of the estimator (each pipeline step, each nested estimator) an integer
(`reproducible`; estimators without one are deterministic), and a shuffled split or a subsample seeded too.
An unseeded fit has no key, so it is never looked up and never copied from. Adding the path-reuse setting
changed every key: fits stored before it are not reused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import registry
from .folds import cv_identity

# Estimators proven to give identical scores when grown along the parameter (see the module docstring).
PATH_REUSE: dict[str, str] = {
    "RandomForestClassifier": "n_estimators",
    "RandomForestRegressor": "n_estimators",
    "ExtraTreesClassifier": "n_estimators",
    "ExtraTreesRegressor": "n_estimators",
    "GradientBoostingClassifier": "n_estimators",
    "GradientBoostingRegressor": "n_estimators",
    "HistGradientBoostingClassifier": "max_iter",
    "HistGradientBoostingRegressor": "max_iter",
    "BaggingClassifier": "n_estimators",
    "BaggingRegressor": "n_estimators",
}
HGB_AUTO_EARLY_STOPPING_ROWS = 10_000  # HistGradientBoosting's early_stopping="auto" turns on above this

Cell = tuple[int, int, dict[str, Any]]  # (candidate index, fold, params), as in `engine.run.Job.cells`


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chain_blocker(steps: Sequence[Sequence[str]], params: Mapping[str, Any], n_train: int) -> str | None:
    """Why fits with these (fixed + candidate) parameters cannot be grown from one model; None if they can."""
    if len(steps) != 1:
        return "a pipeline"
    name = steps[0][0]
    growth = PATH_REUSE.get(name)
    if growth is None:
        return f"{name} is not proven for path reuse"
    if "warm_start" in params:
        return "warm_start is set by the search"
    if any("__" in key for key in params):
        return "nested parameters"
    if not _is_int(params.get("random_state")):
        return "random_state is not an integer"
    if not _is_int(params.get(growth)) or params[growth] < 1:
        return f"{growth} is not a positive integer"
    if name.startswith("GradientBoosting") and params.get("n_iter_no_change") is not None:
        return "early stopping (n_iter_no_change)"
    if name.startswith("HistGradientBoosting"):
        early = params.get("early_stopping", "auto")
        if early is True or (early == "auto" and n_train > HGB_AUTO_EARLY_STOPPING_ROWS):
            return "early stopping"
    if name.startswith("Bagging") and params.get("oob_score"):
        return "oob_score"
    return None


@dataclass(frozen=True)
class Chain:
    """Fits of one fold run as one task. With `param`, the cells differ only in `param` (increasing) and
    are grown from one warm-started model; without, there is one cell, fitted independently."""

    fold: int
    cells: tuple[tuple[int, dict[str, Any]], ...]  # (candidate index, params)
    param: str | None = None

    @property
    def fits_saved(self) -> int:
        """Fits this chain does not run from scratch."""
        return len(self.cells) - 1 if self.param else 0


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def plan_chains(
    steps: Sequence[Sequence[str]], fixed: Mapping[str, Any], cells: Sequence[Cell], n_train: Sequence[int]
) -> list[Chain]:
    """Group `cells` into chains (see `Chain`); `n_train[fold]` is the number of training rows of each fold.

    Only cells whose grid sets the growth parameter and whose other parameters are equal are chained, one
    chain per distinct value; a repeated value is fitted on its own. Every cell is in exactly one chain."""
    growth = PATH_REUSE.get(steps[0][0]) if len(steps) == 1 else None
    if growth is None:
        return [Chain(fold, ((cand, params),)) for cand, fold, params in cells]
    chains: list[Chain] = []
    groups: dict[tuple[int, str], list[tuple[int, dict[str, Any]]]] = {}
    for cand, fold, params in cells:
        if growth not in params or chain_blocker(steps, {**fixed, **params}, n_train[fold]):
            chains.append(Chain(fold, ((cand, params),)))
            continue
        rest = {k: v for k, v in params.items() if k != growth}
        groups.setdefault((fold, _canonical(rest)), []).append((cand, params))
    for (fold, _), members in groups.items():
        members.sort(key=lambda m: (m[1][growth], m[0]))
        path: list[tuple[int, dict[str, Any]]] = []
        for cand, params in members:
            if path and path[-1][1][growth] == params[growth]:
                chains.append(Chain(fold, ((cand, params),)))  # the same size twice: an independent fit
            else:
                path.append((cand, params))
        chains.append(Chain(fold, tuple(path), growth if len(path) > 1 else None))
    return chains


# ---------------------------------------------------------------------------------------------
# Fit keys (reuse across searches)
# ---------------------------------------------------------------------------------------------

# Job fields that change how fits are run, not what they compute. Every other field (including ones
# added later, such as halving's `subsample`) is part of the key, so a new setting can only lower reuse.
NOT_IN_KEY = ("cells", "n_jobs", "cluster_workers", "data", "params", "task", "output", "fit_threads", "batch")


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__}


def reproducible(steps: Sequence[Sequence[str]], params: Mapping[str, Any]) -> bool:
    """Whether a fit of these (name, module) steps with these (fixed + candidate) parameters gives the same
    scores every time: every `random_state` it has (its own, each pipeline step's, each nested estimator's,
    as `get_params(deep=True)` lists them) is an integer. An estimator without one is deterministic. One
    that cannot be built is not vouched for."""
    try:
        est = registry.build(tuple((str(name), str(module)) for name, module in steps), dict(params))
        found = est.get_params(deep=True)
    except Exception:  # noqa: BLE001 - any failure means "not known to repeat", never a crash
        return False
    seeds = [v for k, v in found.items() if k == "random_state" or k.endswith("__random_state")]
    return all(_is_int(seed) for seed in seeds)


def _split_reproducible(job: Mapping[str, Any]) -> bool:
    """A shuffled split (KFold shuffled with no seed) or a halving subsample without a seed differs each run."""
    cv = job.get("cv") or {}
    if cv.get("shuffle") and not _is_int(cv.get("random_state")):
        return False
    subsample = job.get("subsample")
    return subsample is None or _is_int(subsample.get("random_state"))


def fit_keys(job: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    """{(candidate, fold): fit key} for a job given as `Job.to_dict()`, for the cells whose fits repeat (see
    the module docstring); empty when its data has no content key (`job["data"]["key"]`, set by the service
    layer from the data set's row) or its split is not seeded."""
    data_key = job["data"].get("key")
    if not data_key or not _split_reproducible(job):
        return {}
    base = {k: v for k, v in job.items() if k not in NOT_IN_KEY}
    base.update(data=data_key, versions=library_versions())
    if job.get("cv"):  # explicit splits as their sha256: the key is the same, each fit's payload stays small
        base["cv"] = cv_identity(job["cv"])
    if job["data"].get("holdout"):  # the same data set held out otherwise is other training rows
        base["holdout"] = job["data"]["holdout"]
    fixed = job.get("params") or {}
    repeats: dict[str, bool] = {}  # canonical params -> reproducible (each candidate is checked once)
    keys: dict[tuple[int, int], str] = {}
    for c, f, p in job["cells"]:
        params = {**fixed, **p}
        canonical = _canonical(params)
        if canonical not in repeats:
            repeats[canonical] = reproducible(job["steps"], params)
        if repeats[canonical]:
            keys[(int(c), int(f))] = fit_key(base, params, int(f))
    return keys


def fit_key(base: Mapping[str, Any], params: Mapping[str, Any], fold: int) -> str:
    payload = {**base, "params": dict(params), "fold": fold}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()

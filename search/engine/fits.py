"""One fit, or one grown chain of fits, as scikit-learn's `_fit_and_score` does it: clone, `set_params`,
`_safe_split`, fit on train, score on test (error_score=nan). Runs in the runner's pool processes (engine.run).
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from .reuse import Chain


def machine_name() -> str:
    """This machine's name on units and fits: `FANOUT_MACHINE_NAME` when set (several clusters sharing one
    machine, as in tests and benchmarks, need distinct names), else the hostname."""
    return os.environ.get("FANOUT_MACHINE_NAME") or socket.gethostname()


@dataclass
class FitResult:
    candidate: int
    fold: int
    test_scores: dict[str, float | None]
    train_scores: dict[str, float | None] | None
    fit_time: float
    score_time: float
    started_at: float  # unix time
    finished_at: float
    pid: int
    host: str
    n_test_samples: int
    error: str = ""
    threads: dict[str, int] | None = None  # thread pools of this process, reported by its first fit
    path_reused: bool = False  # scored from a warm-started model grown from a smaller one (engine.reuse)
    fit_key: str = ""  # see engine.reuse.fit_keys; empty when the job's data has no content key
    cores: int = 1  # threads the fit was built with (engine.schedule); its scores are computed with one

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _as_score_dict(value: Any, metrics: list[str]) -> tuple[dict[str, float | None], str]:
    """Scorer output → {metric: float or None}; a failed scorer gives None plus its message."""
    raw = value if isinstance(value, dict) else {metrics[0]: value}
    out: dict[str, float | None] = {}
    errors = []
    for m in metrics:
        v = raw.get(m)
        if isinstance(v, str):  # _MultimetricScorer(raise_exc=False) returns the formatted error
            errors.append(f"scoring {m}: {v.strip().splitlines()[-1]}")
            out[m] = None
            continue
        f = float(v) if v is not None else math.nan
        out[m] = f if math.isfinite(f) else None
    return out, "\n".join(errors)


@dataclass(frozen=True)
class FitContext:
    """What every fit of a job shares (joblib memory-maps the large arrays for the worker processes)."""

    estimator: BaseEstimator
    X: np.ndarray
    y: np.ndarray
    scorer: Any
    metrics: list[str]
    return_train_score: bool
    threads: int  # BLAS/OpenMP threads per fit process, so processes × threads never exceeds the cores
    job_token: str = ""  # one per job: a reused pool process reports its thread pools once per job
    fit_threads: int = 1  # a forest's trees built in this many threads (engine.schedule), scored with one
    # The estimator's own parameters when a fresh copy may be built from them directly (see `fresh`), else None.
    plain_params: dict[str, Any] | None = None


PLAIN = (int, float, str, bool, type(None))  # parameter values that clone's deepcopy returns unchanged


def plain_params(est: BaseEstimator) -> dict[str, Any] | None:
    """The parameters that `clone(est)` passes to the estimator's class, when a copy built from them by the class
    alone is what `clone` builds: clone is not overridden; the estimator holds no attribute its constructor does not
    set (no metadata requests, output configuration or callbacks, which clone copies); every value is a plain
    number, text or None (deep-copied to itself); and the constructor stores each one as given (clone's own
    check). None otherwise: a pipeline, a meta-estimator, a parameter that is an object."""
    if type(est).__sklearn_clone__ is not BaseEstimator.__sklearn_clone__:
        return None
    params = est.get_params(deep=False)
    if not all(type(v) in PLAIN for v in params.values()):
        return None
    built = type(est)(**params)  # attributes its constructor sets itself (SVC's `nu`) are in both
    if set(vars(built)) != set(vars(est)):
        return None
    stored = built.get_params(deep=False)
    return params if all(stored[k] is v for k, v in params.items()) else None


def fresh(ctx: FitContext, params: dict[str, Any]) -> BaseEstimator:
    """An unfitted copy of the job's estimator with a candidate's `params`: `clone(estimator).set_params(**params)`
    as scikit-learn's `_fit_and_score` builds it. Where `ctx.plain_params` allows (every parameter a plain value
    of the estimator itself), the class is called with the merged parameters: the same object, built in about
    1 µs instead of clone's 78 (docs/performance.md, what a fit's time includes)."""
    params = without_n_jobs(params)
    base = ctx.plain_params
    if base is not None and all(k in base and type(v) in PLAIN for k, v in params.items()):
        return type(ctx.estimator)(**{**base, **params})
    return clone(ctx.estimator).set_params(**clone(params, safe=False))


def _fit(ctx: FitContext, est: BaseEstimator, X: Any, y: Any) -> None:
    """`est.fit(X, y)`, its trees built in `ctx.fit_threads` threads when more than one; `n_jobs` is then set
    back to 1, so predictions and scores are computed in scikit-learn's one-thread order (bit-identical)."""
    if ctx.fit_threads <= 1:
        est.fit(X, y)
        return
    est.set_params(n_jobs=ctx.fit_threads)
    try:
        est.fit(X, y)
    finally:
        est.set_params(n_jobs=1)


_job_seen: str | None = None


def _limit_threads(threads: int, job_token: str = "") -> dict[str, int] | None:
    """Limit this process's thread pools at its first fit of a job and return what they use (for the
    record); None for the job's later fits in the same process. Pool processes outlive jobs (a runner
    is reused for the next unit), so the limit is set again for every job."""
    global _job_seen
    if _job_seen is not None and _job_seen == job_token:
        return None
    _job_seen = job_token
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=threads)
    used: dict[str, int] = {}
    for pool in threadpool_info():
        used[pool["user_api"]] = max(used.get(pool["user_api"], 0), pool["num_threads"])
    return used


def score_or_nan(ctx: FitContext, est: BaseEstimator, X: Any, y: Any) -> tuple[dict[str, float | None], str]:
    """`_validation._score` with error_score=nan: a scorer that raises gives NaN scores and its message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _as_score_dict(ctx.scorer(est, X, y), ctx.metrics)
    except Exception as exc:  # noqa: BLE001 - a failed score is data (NaN), as in scikit-learn
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return {m: None for m in ctx.metrics}, f"scoring: {message}"


def score_fitted(
    ctx: FitContext, est: BaseEstimator, X_train: Any, y_train: Any, X_test: Any, y_test: Any
) -> tuple[dict[str, float | None], dict[str, float | None] | None, str, float]:
    """Test scores, train scores (when asked for), the scorers' error text of a fitted estimator, and the
    time the test scores took (scikit-learn's `score_time`)."""
    t0 = time.perf_counter()
    test_scores, error = score_or_nan(ctx, est, X_test, y_test)
    score_time = time.perf_counter() - t0
    train_scores = None
    if ctx.return_train_score:
        train_scores, train_error = score_or_nan(ctx, est, X_train, y_train)
        error = "\n".join(e for e in (error, train_error) if e)
    return test_scores, train_scores, error, score_time


def fit_and_score(
    ctx: FitContext, train: np.ndarray, test: np.ndarray, params: dict[str, Any], candidate: int, fold: int
) -> FitResult:
    """One fit as `sklearn.model_selection._validation._fit_and_score` does it (error_score=nan)."""
    from sklearn.utils.metaestimators import _safe_split

    threads = _limit_threads(ctx.threads, ctx.job_token)
    started = time.time()
    est = fresh(ctx, params)
    t0 = time.perf_counter()  # scikit-learn's `fit_time` includes the two `_safe_split`s (docs/performance.md)
    X_train, y_train = _safe_split(est, ctx.X, ctx.y, train)
    X_test, y_test = _safe_split(est, ctx.X, ctx.y, test, train)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; failures are recorded below
            _fit(ctx, est, X_train, y_train)
    except Exception as exc:  # noqa: BLE001 - a failed fit is data (error_score=nan), not a crash
        fit_time = time.perf_counter() - t0
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        nan_scores: dict[str, float | None] = {m: None for m in ctx.metrics}
        return FitResult(
            candidate, fold, nan_scores, dict(nan_scores) if ctx.return_train_score else None,
            fit_time, 0.0, started, time.time(), os.getpid(), machine_name(), len(test), error, threads,
            cores=ctx.fit_threads,
        )  # fmt: skip
    fit_time = time.perf_counter() - t0
    test_scores, train_scores, error, score_time = score_fitted(ctx, est, X_train, y_train, X_test, y_test)
    return FitResult(
        candidate, fold, test_scores, train_scores, fit_time, score_time, started, time.time(),
        os.getpid(), machine_name(), len(test), error, threads, cores=ctx.fit_threads,
    )  # fmt: skip


def fit_chain(ctx: FitContext, train: np.ndarray, test: np.ndarray, chain: Chain) -> list[FitResult]:
    """The fits of one chain (see `engine.reuse`): grown from one warm-started model when `chain.param` is
    set, else one independent fit. Each result's `fit_time` is its own fit: the trees it added."""
    from sklearn.utils.metaestimators import _safe_split

    first_cand, first_params = chain.cells[0]
    if chain.param is None:
        return [fit_and_score(ctx, train, test, first_params, first_cand, chain.fold)]
    threads = _limit_threads(ctx.threads, ctx.job_token)
    est = fresh(ctx, first_params)
    split_started, t_split = time.time(), time.perf_counter()
    X_train, y_train = _safe_split(est, ctx.X, ctx.y, train)
    X_test, y_test = _safe_split(est, ctx.X, ctx.y, test, train)
    out: list[FitResult] = []
    for i, (cand, params) in enumerate(chain.cells):
        started = time.time()
        if i:
            est.set_params(**{chain.param: params[chain.param], "warm_start": True})
        t0 = time.perf_counter()
        if not i:  # the chain's one split counts in its first fit, as scikit-learn counts each fit's own
            started, t0 = split_started, t_split
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _fit(ctx, est, X_train, y_train)
        except Exception:  # noqa: BLE001 - the rest of the chain is fitted independently, failure included
            rest = chain.cells[i:]
            return out + [fit_and_score(ctx, train, test, p, c, chain.fold) for c, p in rest]
        fit_time = time.perf_counter() - t0
        test_scores, train_scores, error, score_time = score_fitted(ctx, est, X_train, y_train, X_test, y_test)
        out.append(FitResult(
            cand, chain.fold, test_scores, train_scores, fit_time, score_time, started, time.time(),
            os.getpid(), machine_name(), len(test), error, threads if i == 0 else None, path_reused=i > 0,
            cores=ctx.fit_threads,
        ))  # fmt: skip
    return out


def _is_n_jobs(key: str) -> bool:
    return key == "n_jobs" or key.endswith("__n_jobs")


def without_n_jobs(params: dict[str, Any]) -> dict[str, Any]:
    """A candidate's parameters without an estimator's own `n_jobs` (a spec stored before the guard refused
    them may hold one): the fit keeps `single_process`'s 1."""
    return {k: v for k, v in params.items() if not _is_n_jobs(k)} if any(map(_is_n_jobs, params)) else params


def single_process(est: BaseEstimator) -> BaseEstimator:
    """Every step's own `n_jobs` set to 1: Fanout already runs one process per fit on every core, so a forest's
    `n_jobs=-1` would start cores² processes (docs/traps.md, oversubscription and memory). Scores are the same."""
    own = est.get_params(deep=True)
    ones = {k: 1 for k in own if _is_n_jobs(k) and own[k] != 1}
    if ones:
        est.set_params(**ones)
    return est

"""Run (candidate, fold) fits with joblib and hand each result to a callback as soon as it finishes.

The same code runs in the isolated runner process (`python -m search.engine.runner`) under a
django-q2 worker, in `runsearch --local`, and in tests. Scores equal `GridSearchCV`'s because every
fit is what `GridSearchCV` does: clone, `set_params`, `_safe_split`, fit on train, score on test.
"""

from __future__ import annotations

import importlib
import math
import os
import socket
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, check_cv
from sklearn.utils.multiclass import type_of_target

from . import datasets, registry
from .cost import relative_cost
from .halving import subsample_splits
from .holdout import split_from_dict
from .reuse import Chain, fit_keys, plan_chains
from .speedup import lpt_order


def machine_name() -> str:
    """This machine's name on units and fits: `FANOUT_MACHINE_NAME` when set (several clusters sharing one
    machine, as in tests and benchmarks, need distinct names), else the hostname."""
    return os.environ.get("FANOUT_MACHINE_NAME") or socket.gethostname()


@dataclass(frozen=True)
class Job:
    """Everything a runner needs; JSON-serialisable, no pickles. Built by the service layer."""

    steps: list[tuple[str, str]]
    params: dict[str, Any]
    data: dict[str, Any]  # {"kind": "builtin"|"generator"|"csv"|"npz", "name", "options", "path", "target"}
    cv: dict[str, Any]
    scoring: str | list[str] | None
    n_jobs: int
    return_train_score: bool
    cells: list[tuple[int, int, dict[str, Any]]]  # (candidate index, fold, params)
    cluster_workers: int = 1  # django-q2 workers on this machine, each running one unit at a time
    # Successive halving over samples: every fold's train and test rows subsampled to `fraction`
    # with `random_state`, as HalvingGridSearchCV's `_SubsampleMetaSplitter` does.
    subsample: dict[str, Any] | None = None
    path_reuse: bool = True  # grow models along n_estimators & co. where proven identical (engine.reuse)
    # "cv": the cells' (candidate, fold) fits; "refit": the one cell's candidate fitted on every training row,
    # scored on the held-out rows and written as model files into the directory `output` (engine.refit)
    task: str = "cv"
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "steps": [list(s) for s in self.steps], "cells": [list(c) for c in self.cells]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(
            steps=[(str(a), str(b)) for a, b in d["steps"]],
            params=d["params"],
            data=d["data"],
            cv=d["cv"],
            scoring=d["scoring"],
            n_jobs=int(d["n_jobs"]),
            return_train_score=bool(d["return_train_score"]),
            cells=[(int(c), int(f), p) for c, f, p in d["cells"]],
            cluster_workers=int(d.get("cluster_workers", 1)),
            subsample=d.get("subsample"),
            path_reuse=bool(d.get("path_reuse", True)),
            task=str(d.get("task", "cv")),
            output=str(d.get("output", "")),
        )


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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RunInfo:
    """What the runner really used: the evidence that `n_jobs=-1` was not silently reduced."""

    n_jobs_requested: int
    n_jobs_effective: int
    cpu_count: int
    host: str
    pid: int
    inner_threads: int = 1
    machine_cores: int = 1
    warnings: list[str] = field(default_factory=list)
    worker_pids: set[int] = field(default_factory=set)


def load_data(source: dict[str, Any]) -> datasets.Data:
    """The rows cross-validation sees: the data set, or its training part under a holdout (engine.holdout)."""
    return split_from_dict(load_full_data(source), source.get("holdout"))[0]


def load_full_data(source: dict[str, Any]) -> datasets.Data:
    kind = source["kind"]
    if kind == "builtin":
        return datasets.load_builtin(source["name"])
    if kind == "generator":
        return datasets.generate(source["name"], source.get("options", {}))
    if kind == "csv":
        return datasets.read_csv_file(source["path"], source["target"])
    if kind == "npz":
        return datasets.read_npz_file(source["path"])
    raise ValueError(f"unknown data source kind {kind!r}")


def make_cv(cv: dict[str, Any], y: np.ndarray, classifier: bool) -> Any:
    """What `GridSearchCV` is given as `cv`: `cv=k` → (Stratified)KFold(k), or the shuffled form; `GroupKFold(k)`
    for groups (split with the data set's groups, as `fit(X, y, groups=groups)` splits); explicit splits → the
    fixed list of (train, test) index arrays, the user's folds in the user's order."""
    if cv.get("splits") is not None:
        return [(np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)) for train, test in cv["splits"]]
    if cv.get("groups"):
        return GroupKFold(cv["n_splits"])
    if not cv.get("shuffle"):
        return check_cv(cv["n_splits"], y, classifier=classifier)
    stratified = classifier and type_of_target(y) in ("binary", "multiclass")
    splitter = StratifiedKFold if stratified else KFold
    return splitter(cv["n_splits"], shuffle=True, random_state=cv.get("random_state"))


def make_splits(cv: dict[str, Any], data: datasets.Data, classifier: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds `GridSearchCV(cv=make_cv(…)).fit(X, y, groups=data.groups)` fits on, in its order."""
    splitter = make_cv(cv, data.y, classifier)
    if isinstance(splitter, list):
        return splitter
    return list(splitter.split(data.X, data.y, data.groups))


def make_scorer(estimator: BaseEstimator, scoring: str | list[str] | None) -> Any:
    return check_scoring(estimator, scoring=scoring, raise_exc=False)


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
    est = clone(ctx.estimator).set_params(**clone(without_n_jobs(params), safe=False))
    X_train, y_train = _safe_split(est, ctx.X, ctx.y, train)
    X_test, y_test = _safe_split(est, ctx.X, ctx.y, test, train)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; failures are recorded below
            est.fit(X_train, y_train)
    except Exception as exc:  # noqa: BLE001 - a failed fit is data (error_score=nan), not a crash
        fit_time = time.perf_counter() - t0
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        nan_scores: dict[str, float | None] = {m: None for m in ctx.metrics}
        return FitResult(
            candidate, fold, nan_scores, dict(nan_scores) if ctx.return_train_score else None,
            fit_time, 0.0, started, time.time(), os.getpid(), machine_name(), len(test), error, threads,
        )  # fmt: skip
    fit_time = time.perf_counter() - t0
    test_scores, train_scores, error, score_time = score_fitted(ctx, est, X_train, y_train, X_test, y_test)
    return FitResult(
        candidate, fold, test_scores, train_scores, fit_time, score_time, started, time.time(),
        os.getpid(), machine_name(), len(test), error, threads,
    )  # fmt: skip


def fit_chain(ctx: FitContext, train: np.ndarray, test: np.ndarray, chain: Chain) -> list[FitResult]:
    """The fits of one chain (see `engine.reuse`): grown from one warm-started model when `chain.param` is
    set, else one independent fit. Each result's `fit_time` is its own fit: the trees it added."""
    from sklearn.utils.metaestimators import _safe_split

    first_cand, first_params = chain.cells[0]
    if chain.param is None:
        return [fit_and_score(ctx, train, test, first_params, first_cand, chain.fold)]
    threads = _limit_threads(ctx.threads, ctx.job_token)
    est = clone(ctx.estimator).set_params(**clone(without_n_jobs(first_params), safe=False))
    X_train, y_train = _safe_split(est, ctx.X, ctx.y, train)
    X_test, y_test = _safe_split(est, ctx.X, ctx.y, test, train)
    out: list[FitResult] = []
    for i, (cand, params) in enumerate(chain.cells):
        started = time.time()
        if i:
            est.set_params(**{chain.param: params[chain.param], "warm_start": True})
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X_train, y_train)
        except Exception:  # noqa: BLE001 - the rest of the chain is fitted independently, failure included
            rest = chain.cells[i:]
            return out + [fit_and_score(ctx, train, test, p, c, chain.fold) for c, p in rest]
        fit_time = time.perf_counter() - t0
        test_scores, train_scores, error, score_time = score_fitted(ctx, est, X_train, y_train, X_test, y_test)
        out.append(FitResult(
            cand, chain.fold, test_scores, train_scores, fit_time, score_time, started, time.time(),
            os.getpid(), machine_name(), len(test), error, threads if i == 0 else None, path_reused=i > 0,
        ))  # fmt: skip
    return out


def metric_names(scoring: str | list[str] | tuple[str, ...] | None) -> list[str]:
    return list(scoring) if isinstance(scoring, (list, tuple)) else ["score"]


WARM_MODULES = ("sklearn.ensemble", "sklearn.linear_model", "sklearn.svm", "sklearn.tree", "sklearn.neighbors")


def _ready(hold: float = 0.0) -> int:
    """In each pool process: import the usual estimator families now, while the worker is idle; then hold
    the process `hold` seconds so the next warm-up task goes to another one."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    time.sleep(hold)
    return os.getpid()


WARM_UP_SECONDS = 60.0  # a loaded machine may need this long to start and import in every pool process


def warm_up(n_jobs: int = -1, deadline: float = WARM_UP_SECONDS, need: int | None = None) -> int:
    """Start the loky pool and have its processes import scikit-learn before any job, until `need` of them
    (default: all) have checked in; return how many did. Without it a short job on a cold pool is done by
    the first process to come up while the others still import, and "n_jobs=-1" really runs on one core.
    Cheap once warm (one round of trivial tasks, a few ms)."""
    _ready()  # this process builds the estimator too
    n = joblib.effective_n_jobs(n_jobs)
    if n <= 1:
        return 1
    need = min(n, need or n)
    seen: set[int] = set()
    end = time.monotonic() + deadline
    with joblib.Parallel(n_jobs=n) as parallel:
        while len(seen) < need and time.monotonic() < end:
            seen.update(parallel(joblib.delayed(_ready)(0.02) for _ in range(n)))
    return len(seen)


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


def run_info(job: Job) -> RunInfo:
    """What this machine grants the job, with a warning for every way it would be oversubscribed. More
    processes than cores are never started: `n_jobs` is clamped to the cores (and says so)."""
    granted = joblib.effective_n_jobs(job.n_jobs)
    cores = joblib.cpu_count()  # honours CPU affinity and cgroup quotas
    machine = os.cpu_count() or cores
    n_jobs = min(granted, cores)
    processes = n_jobs * max(1, job.cluster_workers)
    warnings_: list[str] = []
    if granted > n_jobs:
        warnings_.append(
            f"oversubscribed: {job.cluster_workers} worker(s) x {granted} processes = "
            f"{granted * max(1, job.cluster_workers)} on {cores} cores asked for (n_jobs={job.n_jobs}); ran "
            f"{n_jobs} processes"
        )
    if processes > cores:
        warnings_.append(
            f"oversubscribed: {job.cluster_workers} worker(s) x {n_jobs} processes = {processes} on {cores} cores; "
            f"use n_jobs={max(1, cores // max(1, job.cluster_workers))} or fewer workers"
        )
    if cores < machine:
        warnings_.append(f"this worker may use only {cores} of the machine's {machine} cores (CPU affinity or quota)")
    if job.n_jobs < 0 and granted == 1 and cores > 1:
        warnings_.append("joblib granted 1 process for n_jobs=-1 (is this a daemonic process?)")
    return RunInfo(
        n_jobs_requested=job.n_jobs, n_jobs_effective=n_jobs, cpu_count=cores, host=machine_name(),
        pid=os.getpid(), inner_threads=max(1, cores // processes), machine_cores=machine, warnings=warnings_,
    )  # fmt: skip


def run_job(job: Job, on_start: Callable[[RunInfo], None] | None = None) -> Iterator[FitResult]:
    """Yield each cell's result as it finishes (unordered), using `job.n_jobs` processes.

    Cells are dispatched most expensive first (see `engine.cost`) so the last fits are short ones."""
    info = run_info(job)
    if on_start:
        on_start(info)
    if not job.cells:
        return
    data = load_data(job.data)
    estimator = single_process(registry.build(tuple(job.steps), without_n_jobs(job.params)))
    splits = make_splits(job.cv, data, is_classifier(estimator))
    if job.subsample is not None:
        splits = subsample_splits(splits, float(job.subsample["fraction"]), job.subsample.get("random_state"))
    ctx = FitContext(
        estimator, data.X, data.y, make_scorer(estimator, job.scoring), metric_names(job.scoring),
        job.return_train_score, info.inner_threads, uuid.uuid4().hex,
    )  # fmt: skip
    # Path reuse: cells that differ only in a growing parameter run as one warm-started chain (engine.reuse).
    if job.path_reuse:
        chains = plan_chains(job.steps, job.params, job.cells, [len(train) for train, _ in splits])
    else:
        chains = [Chain(fold, ((cand, params),)) for cand, fold, params in job.cells]
    if len(chains) > 1:
        # pool processes ready first (as many as there are tasks), so the job really runs on all of them
        warm_up(info.n_jobs_effective, need=len(chains))
    order = lpt_order([relative_cost(chain.cells[-1][1]) for chain in chains])  # a chain costs its largest fit
    tasks: Iterable[Any] = (
        joblib.delayed(fit_chain)(ctx, splits[chain.fold][0], splits[chain.fold][1], chain)
        for chain in (chains[i] for i in order)
    )
    keys = fit_keys(job.to_dict())
    # Arrays above 1 MB reach the worker processes as read-only memory maps, not copies.
    parallel = joblib.Parallel(
        n_jobs=info.n_jobs_effective, return_as="generator_unordered", max_nbytes="1M", mmap_mode="r"
    )
    for results in parallel(tasks):
        for result in results:
            result.fit_key = keys.get((result.candidate, result.fold), "")
            info.worker_pids.add(result.pid)
            yield result

"""Run (candidate, fold) fits with joblib and hand each result to a callback as soon as it finishes.

The same code runs in the isolated runner process (`python -m search.engine.runner`) under a
django-q2 worker, in `runsearch --local`, and in tests. Scores equal `GridSearchCV`'s because every
fit is what `GridSearchCV` does: clone, `set_params`, `_safe_split`, fit on train, score on test.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, check_cv
from sklearn.utils.multiclass import type_of_target

from . import datasets, registry
from .cost import relative_cost
from .fits import (
    FitContext,
    FitResult,
    fit_chain,
    machine_name,
    plain_params,
    single_process,
    without_n_jobs,
)
from .halving import subsample_splits
from .holdout import split_from_dict
from .reuse import Chain, fit_keys, plan_chains
from .schedule import batch_sizes, plan_schedule, threaded_fit


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
    # Threads per forest fit (engine.schedule); 0: chosen for the cores by `plan_schedule`.
    fit_threads: int = 0
    # Fits per dispatched task for fits too small to be worth a process hand-off each (engine.batches); 0: chosen.
    batch: int = 0

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
            fit_threads=int(d.get("fit_threads", 0)),
            batch=int(d.get("batch", 0)),
        )


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
    fit_threads: int = 1  # threads each forest fit builds its trees in (engine.schedule)


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


def metric_names(scoring: str | list[str] | tuple[str, ...] | None) -> list[str]:
    return list(scoring) if isinstance(scoring, (list, tuple)) else ["score"]


WARM_MODULES = ("sklearn.ensemble", "sklearn.linear_model", "sklearn.svm", "sklearn.tree", "sklearn.neighbors")


def _ready(hold: float = 0.0) -> int:
    """In each pool process: import the usual estimator families now, while the worker is idle, and take what
    they built out of the garbage collector's sight (`freeze_imports`); then hold the process `hold` seconds
    so the next warm-up task goes to another one."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    freeze_imports()
    time.sleep(hold)
    return os.getpid()


_frozen = False


def freeze_imports() -> None:
    """Once per process: collect, then `gc.freeze()` every object that survives (the modules of scikit-learn,
    SciPy, NumPy and pandas: about 120,000 objects, measured), so later full collections scan only what
    fitting creates.
    Each full collection of a pool process otherwise took 70-90 ms, about every ten dispatched batches: a
    process stood still between fits for 0.3-0.5 s of a 1,115-fit job (docs/performance.md, garbage
    collection). Frozen objects are still freed when nothing refers to them; only a reference cycle among
    them would stay (module-level objects: they live as long as the process anyway). Cheap after the first
    call: a flag (`gc.get_freeze_count()` walks the frozen objects, 3-4 ms)."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


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
    warm = _warm_pool(n)
    if len(warm) >= need:  # a reused runner's pool, every process still up: no round (20-60 ms per unit)
        return len(warm)
    _pool_drop_if_damaged()
    seen: set[int] = set()
    end = time.monotonic() + deadline
    with joblib.Parallel(n_jobs=n) as parallel:
        while len(seen) < need and time.monotonic() < end:
            seen.update(parallel(joblib.delayed(_ready)(0.02) for _ in range(n)))
    _warmed.clear()
    _warmed.update(seen)
    return len(seen)


_warmed: set[int] = set()  # the pool processes that checked in at the last warm-up (they have imported)


def _pool() -> tuple[Any, dict[int, Any]] | None:
    """loky's reusable pool and its processes by pid, as joblib's `Parallel` will reuse them; None when there is
    none yet or its internals cannot be read (then a warm-up round runs, as it always did)."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    processes = getattr(executor, "_processes", None)
    return (executor, processes) if executor is not None and isinstance(processes, dict) else None


def _warm_pool(n: int) -> set[int]:
    """The processes of loky's reusable pool that are alive and checked in at the last warm-up, if the pool
    still has `n` workers (joblib resizes it otherwise, with cold new ones); empty when that cannot be read.
    A worker that timed out idle, or was killed, is gone from the pool, so the next job warms up again."""
    pool = _pool()
    if pool is None or getattr(pool[0], "_max_workers", None) != n:
        return set()
    executor, processes = pool
    if getattr(executor, "_flags", None) is not None and executor._flags.broken:
        return set()
    live = {pid for pid, proc in list(processes.items()) if proc.is_alive()}
    return live & _warmed if len(live) == n else set()


def _pool_drop_if_damaged() -> None:
    """End loky's reusable pool if one of its processes died since the last job (killed, out of memory): joblib
    would hand the next job to it and fail the job with TerminatedWorkerError; the next `Parallel` starts a
    whole new pool instead."""
    pool = _pool()
    if pool is not None and not all(proc.is_alive() for proc in list(pool[1].values())):
        pool[0].shutdown(wait=True, kill_workers=True)


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
    """Yield each cell's result as it finishes (unordered), using `job.n_jobs` processes."""
    for batch in run_job_batches(job, on_start):
        yield from batch


def fit_batch(ctx: FitContext, tasks: list[tuple[np.ndarray, np.ndarray, Chain]]) -> list[FitResult]:
    """Several tasks in one dispatch (fits too small for a process hand-off each), in order."""
    freeze_imports()  # a pool process that did not take part in a warm-up (a job of one task)
    return [result for train, test, chain in tasks for result in fit_chain(ctx, train, test, chain)]


def run_job_batches(job: Job, on_start: Callable[[RunInfo], None] | None = None) -> Iterator[list[FitResult]]:
    """The results of each dispatched task as it finishes (unordered): one task's chain, or a batch of small ones.

    Tasks and threads per fit are planned for the cores (engine.schedule), dispatched longest first (see
    `engine.cost`) so the last fits are short ones; many tasks go out in batches that shrink toward the end
    (engine.schedule.batch_sizes), so tiny fits cost one process hand-off per batch while the tail stays short."""
    info = run_info(job)
    if not job.cells:
        if on_start:
            on_start(info)
        return
    data = load_data(job.data)
    estimator = single_process(registry.build(tuple(job.steps), without_n_jobs(job.params)))
    splits = make_splits(job.cv, data, is_classifier(estimator))
    if job.subsample is not None:
        splits = subsample_splits(splits, float(job.subsample["fraction"]), job.subsample.get("random_state"))
    # Path reuse: cells that differ only in a growing parameter run as one warm-started chain (engine.reuse).
    if job.path_reuse:
        chains = plan_chains(job.steps, job.params, job.cells, [len(train) for train, _ in splits])
    else:
        chains = [Chain(fold, ((cand, params),)) for cand, fold, params in job.cells]
    plan = plan_schedule(
        chains, lambda params, fold: relative_cost({**job.params, **params}), info.n_jobs_effective,
        threaded=threaded_fit(job.steps),
    )  # fmt: skip
    threads = job.fit_threads or plan.threads
    slots = max(1, info.n_jobs_effective // threads)
    info.fit_threads = threads
    if on_start:
        on_start(info)
    ctx = FitContext(
        estimator, data.X, data.y, make_scorer(estimator, job.scoring), metric_names(job.scoring),
        job.return_train_score, info.inner_threads, uuid.uuid4().hex, fit_threads=threads,
        plain_params=plain_params(estimator),
    )  # fmt: skip
    tasks = [(splits[chain.fold][0], splits[chain.fold][1], chain) for chain in plan.tasks]
    if len(tasks) > 1 and slots > 1:
        # pool processes ready first (as many as there are tasks), so the job really runs on all of them
        warm_up(slots, need=len(tasks))
    sizes = [job.batch] * math.ceil(len(tasks) / job.batch) if job.batch else batch_sizes(len(tasks), slots)
    bounds = list(itertools.accumulate(sizes, initial=0))
    # Arrays above 1 MB reach the worker processes as read-only memory maps, not copies.
    parallel = joblib.Parallel(n_jobs=slots, return_as="generator_unordered", max_nbytes="1M", mmap_mode="r")
    dispatched = (joblib.delayed(fit_batch)(ctx, tasks[a:b]) for a, b in itertools.pairwise(bounds))
    running = parallel(dispatched)  # joblib has sent the first batches when this returns
    # The cells' fit keys (engine.reuse: an estimator built per candidate, a hash per cell, 90 ms for 6,000
    # cells) are computed while those fit, not before the first one starts.
    keys = fit_keys(job.to_dict())
    for results in running:
        for result in results:
            result.fit_key = keys.get((result.candidate, result.fold), "")
            info.worker_pids.add(result.pid)
        yield results

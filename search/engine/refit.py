"""The refit: the best candidate fitted on every training row, scored on the held-out rows, written as files.

As `GridSearchCV(refit=…)` does it: `clone(estimator).set_params(**best_params).fit(X_train, y_train)`, timed
as `refit_time`; halving refits on the whole training part too. The held-out rows (engine.holdout) are scored
with every scorer of the search, as the search's own scorers score a fold. Runs in the isolated runner
process (engine.runner) on the cluster, never on the web server.

One fit has no folds to spread over the cores: it gets them all instead, through joblib's default `n_jobs`
(estimators with `n_jobs=None` such as forests take it) and its BLAS/OpenMP thread pools. The model's own
parameters stay the candidate's, so it equals scikit-learn's `best_estimator_` parameter for parameter.
(docs/traps.md, model files that run code.)
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from . import artifacts, registry
from .fits import FitContext, machine_name, score_or_nan, without_n_jobs
from .holdout import split_from_dict
from .run import Job, RunInfo, load_full_data, make_scorer, metric_names

SKOPS_NAME = "model.skops"
JOBLIB_NAME = "model.joblib"


@dataclass
class RefitResult:
    candidate: int
    refit_time: float
    n_train: int
    n_test: int
    holdout_scores: dict[str, float | None] | None  # None without a holdout
    holdout_error: str
    skops_path: str
    skops_size: int
    skops_sha256: str
    joblib_path: str
    joblib_size: int
    classes: list[Any] | None
    feature_names: list[str]
    target_name: str
    versions: dict[str, str]
    pid: int
    host: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def refit(job: Job, info: RunInfo) -> RefitResult:
    """Fit `job.cells[0]`'s candidate on the training rows, score it on the held-out rows, write it into
    `job.output` as a skops file (loading it runs no pickle) and a joblib file (a pickle, on request only)."""
    candidate, _fold, params = job.cells[0]
    train, test = split_from_dict(load_full_data(job.data), job.data.get("holdout"))
    base = registry.build(tuple(job.steps), without_n_jobs(job.params))
    model = clone(base).set_params(**clone(without_n_jobs(params), safe=False))
    with threadpool_limits(limits=info.cpu_count), joblib.parallel_config(n_jobs=info.n_jobs_effective):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter, as in the search's own fits
            model.fit(train.X, train.y)
        refit_time = time.perf_counter() - t0
    scores, error = None, ""
    if test is not None:
        metrics = metric_names(job.scoring)
        ctx = FitContext(model, test.X, test.y, make_scorer(model, job.scoring), metrics, False, info.cpu_count)
        scores, error = score_or_nan(ctx, model, test.X, test.y)
    out = Path(job.output)
    out.mkdir(parents=True, exist_ok=True)
    skops_path, joblib_path = out / SKOPS_NAME, out / JOBLIB_NAME
    skops_size = artifacts.dump(model, skops_path)
    joblib_size = artifacts.dump_joblib(model, joblib_path)
    classes = getattr(model, "classes_", None)
    return RefitResult(
        candidate=candidate, refit_time=refit_time, n_train=train.n_samples,
        n_test=test.n_samples if test is not None else 0, holdout_scores=scores, holdout_error=error,
        skops_path=str(skops_path), skops_size=skops_size, skops_sha256=artifacts.sha256_file(skops_path),
        joblib_path=str(joblib_path), joblib_size=joblib_size,
        classes=classes.tolist() if classes is not None else None, feature_names=list(train.feature_names),
        target_name=train.target_name, versions=artifacts.versions(), pid=os.getpid(), host=machine_name(),
    )  # fmt: skip

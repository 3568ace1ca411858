"""Turn stored (candidate, fold) fits into scikit-learn's `cv_results_` layout, computed the same way
as `BaseSearchCV._format_results` (same numpy calls, so means, stds and ranks are bit-for-bit equal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class Fit:
    test_scores: dict[str, float | None]
    train_scores: dict[str, float | None] | None
    fit_time: float
    score_time: float


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _json(v: Any) -> Any:
    """numpy scalar → plain Python; NaN → None (JSON has no NaN)."""
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _rank(means: np.ndarray) -> np.ndarray:
    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    ranks: np.ndarray = rankdata(-filled, method="min").astype(np.int32, copy=False)
    return ranks


def cv_results(
    candidates: Sequence[dict[str, Any]],
    n_splits: int,
    fits: Sequence[Fit],
    metrics: Sequence[str],
    return_train_score: bool = False,
) -> dict[str, list[Any]]:
    """`fits` in GridSearchCV's order: candidate-major, fold-minor (len = candidates × splits)."""
    n = len(candidates)
    if len(fits) != n * n_splits:
        raise ValueError(f"expected {n * n_splits} fits, got {len(fits)}")
    results: dict[str, list[Any]] = {}

    def store(key: str, values: list[float], splits: bool = False, rank: bool = False) -> None:
        array = np.array(values, dtype=np.float64).reshape(n, n_splits)
        if splits:
            for k in range(n_splits):
                results[f"split{k}_{key}"] = [_json(v) for v in array[:, k]]
        means = np.average(array, axis=1)
        results[f"mean_{key}"] = [_json(v) for v in means]
        stds = np.sqrt(np.average((array - means[:, np.newaxis]) ** 2, axis=1))
        results[f"std_{key}"] = [_json(v) for v in stds]
        if rank:
            results[f"rank_{key}"] = [int(r) for r in _rank(means)]

    store("fit_time", [f.fit_time for f in fits])
    store("score_time", [f.score_time for f in fits])
    names = sorted({k for c in candidates for k in c})
    for name in names:
        results[f"param_{name}"] = [c.get(name) for c in candidates]
    results["params"] = [dict(c) for c in candidates]
    for m in metrics:
        store(f"test_{m}", [_nan(f.test_scores.get(m)) for f in fits], splits=True, rank=True)
        if return_train_score:
            store(f"train_{m}", [_nan((f.train_scores or {}).get(m)) for f in fits], splits=True)
    return results


def best_index(results: dict[str, list[Any]], metric: str, *, every_fit_failed: bool = False) -> int | None:
    """Index of the rank-1 candidate of `metric` (first one on ties, as GridSearchCV's argmin); None when every
    fit failed (GridSearchCV raises "All the N fits failed"). Scores that are all NaN without a failed fit (R²
    on one-row folds) rank every candidate 1, so the first one is the best, as in GridSearchCV."""
    if every_fit_failed:
        return None
    return int(np.argmin(results[f"rank_test_{metric}"]))

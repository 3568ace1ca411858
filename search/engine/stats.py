"""Is the best really best? Nadeau and Bengio's corrected resampled paired t-test over CV folds.

Two candidates scored on the same k folds give k paired differences d_j = best_j - other_j. The folds'
training sets overlap, so the differences are correlated and the plain paired t-test (variance / k)
finds differences that are noise. Nadeau & Bengio (2003, "Inference for the Generalization Error",
Machine Learning 52) inflate the variance of the mean instead:

    var_corrected = (1/k + n_test/n_train) * var(d, ddof=1)
    t = mean(d) / sqrt(var_corrected),  df = k - 1

This is the formulation of scikit-learn's example "Statistical comparison of models using grid search"
(`corrected_std`, `compute_corrected_ttest`). That example reports the right-tailed p-value
`t.sf(|t|, df)`; we report the two-sided one, `2 * t.sf(|t|, df)`, exactly twice the example's. With
`n_test = 0` the correction vanishes and the result is `scipy.stats.ttest_rel`'s.

Pure numpy/scipy: no Django here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

EXAMPLE_URL = "https://scikit-learn.org/stable/auto_examples/model_selection/plot_grid_search_stats.html"
WITHIN_NOISE = "within noise"
WORSE = "worse"
BETTER = "better"
NO_TEST = "no test"
EQUAL_RTOL = 1e-12  # scores this close (relative to their size) are equal


@dataclass(frozen=True)
class PairedTest:
    """One candidate against the best. `mean_diff` > 0 means the best scored higher on average.

    `t`, `p` and `mean_diff` are None when no test was possible (`verdict` "no test", `reason` says why).
    """

    k: int
    mean_diff: float | None
    t: float | None
    p: float | None
    df: int | None
    verdict: str
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def corrected_std(differences: np.ndarray, n_train: float, n_test: float) -> float:
    """Standard deviation of the mean difference with Nadeau and Bengio's correction."""
    k = len(differences)
    var = float(np.var(differences, ddof=1))
    return math.sqrt(var * (1 / k + n_test / n_train))


def corrected_ttest(
    best: Sequence[float | None],
    other: Sequence[float | None],
    *,
    n_train: float,
    n_test: float,
    alpha: float = 0.05,
) -> PairedTest:
    """Two-sided corrected paired t-test of `other`'s per-fold scores against `best`'s (same folds, same order).

    A fold where either fit failed (None or NaN score) makes the test impossible: the verdict is
    "no test" with the reason, as a failed fit's score is unknown, not zero. Fewer than two folds
    leave no variance to estimate. When every difference is the same (zero variance, up to a relative
    1e-12 for rounding) there is no noise to compare with: equal scores give t = 0, p = 1 ("within
    noise"); a constant non-zero difference gives t = ±inf, p = 0 ("worse" or "better").
    """
    if len(best) != len(other):
        raise ValueError(f"best has {len(best)} fold scores and other has {len(other)}; pass the same folds")
    if n_train <= 0 or n_test < 0:
        raise ValueError(f"n_train must be > 0 and n_test >= 0, got n_train={n_train}, n_test={n_test}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    k = len(best)
    a, b = np.asarray(best, dtype=float), np.asarray(other, dtype=float)  # None becomes NaN
    failed = np.flatnonzero(~(np.isfinite(a) & np.isfinite(b))).tolist()
    if failed:
        folds = ", ".join(map(str, failed))
        return PairedTest(k, None, None, None, None, NO_TEST, f"failed fit on fold {folds}")
    if k < 2:
        return PairedTest(k, None, None, None, None, NO_TEST, f"needs at least 2 folds, got {k}")
    d = a - b
    mean = float(np.mean(d))
    df = k - 1
    # Differences equal up to rounding (0.9 - 0.8 != 0.8 - 0.7 in floating point) have no variance:
    # their t would be rounding error divided by rounding error.
    tol = EQUAL_RTOL * max(1.0, float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    if np.ptp(d) <= tol:
        if abs(mean) <= tol:
            return PairedTest(k, 0.0, 0.0, 1.0, df, WITHIN_NOISE, "identical scores on every fold")
        t = math.copysign(math.inf, mean)
        return PairedTest(k, mean, t, 0.0, df, WORSE if mean > 0 else BETTER, "the same difference on every fold")
    t = mean / corrected_std(d, n_train, n_test)
    p = float(min(1.0, 2 * stats.t.sf(abs(t), df)))
    verdict = WITHIN_NOISE if p >= alpha else (WORSE if mean > 0 else BETTER)
    return PairedTest(k, mean, t, p, df, verdict)

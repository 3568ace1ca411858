"""The corrected paired t-test against a hand computation, scikit-learn's example and scipy."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from project.cluster import ROOT
from search.engine.stats import BETTER, NO_TEST, WITHIN_NOISE, WORSE, corrected_ttest

BEST = [0.96, 0.94, 0.98, 0.92, 0.95]
OTHER = [0.95, 0.95, 0.96, 0.90, 0.93]


def example_ttest(differences: np.ndarray, df: int, n_train: int, n_test: int) -> tuple[float, float]:
    """scikit-learn's example `compute_corrected_ttest` (plot_grid_search_stats.py): right-tailed p."""
    kr = len(differences)
    std = np.sqrt(np.var(differences, ddof=1) * (1 / kr + n_test / n_train))
    t_stat = np.mean(differences) / std
    return float(t_stat), float(stats.t.sf(np.abs(t_stat), df))


def test_hand_computation() -> None:
    # d = [0.01, -0.01, 0.02, 0.02, 0.02]: mean 0.012, sum of squares about the mean 0.00068
    mean, var = 0.012, 0.00068 / 4
    t = mean / math.sqrt((1 / 5 + 30 / 120) * var)
    result = corrected_ttest(BEST, OTHER, n_train=120, n_test=30)
    assert result.k == 5 and result.df == 4
    assert result.mean_diff == pytest.approx(mean, abs=1e-12)
    assert result.t == pytest.approx(t, abs=1e-12)
    assert result.p == pytest.approx(2 * stats.t.sf(t, 4), abs=1e-12)
    assert result.verdict == WITHIN_NOISE and result.reason == ""


@pytest.mark.parametrize(
    ("best", "other", "n_train", "n_test"),
    [
        (BEST, OTHER, 120, 30),
        ([0.81, 0.84, 0.79, 0.88, 0.83, 0.85, 0.80, 0.86, 0.82, 0.84], [0.78, 0.80, 0.79, 0.83, 0.80, 0.81, 0.77,
                                                                         0.84, 0.80, 0.80], 900, 100),
        ([0.5, 0.7, 0.6], [0.6, 0.5, 0.4], 67, 33),
    ],
)  # fmt: skip
def test_equals_the_sklearn_example(best: list[float], other: list[float], n_train: int, n_test: int) -> None:
    d = np.asarray(best) - np.asarray(other)
    t, p_right = example_ttest(d, len(d) - 1, n_train, n_test)
    result = corrected_ttest(best, other, n_train=n_train, n_test=n_test)
    assert result.t == pytest.approx(t, abs=1e-12)
    assert result.p == pytest.approx(2 * p_right, abs=1e-12)  # two-sided: twice the example's right tail


def test_significant_difference_is_worse_and_the_other_way_round_better() -> None:
    best = [0.81, 0.84, 0.79, 0.88, 0.83, 0.85, 0.80, 0.86, 0.82, 0.84]
    other = [0.71, 0.75, 0.70, 0.80, 0.72, 0.74, 0.71, 0.77, 0.73, 0.74]
    worse = corrected_ttest(best, other, n_train=900, n_test=100)
    assert worse.verdict == WORSE and worse.p is not None and worse.p < 0.05 and worse.t is not None and worse.t > 0
    better = corrected_ttest(other, best, n_train=900, n_test=100)
    assert better.verdict == BETTER and better.p == pytest.approx(worse.p, abs=1e-15)
    assert better.t == pytest.approx(-worse.t, abs=1e-12)


def test_correction_makes_differences_noise_that_the_plain_test_calls_real() -> None:
    plain = corrected_ttest(BEST[:4] * 3, OTHER[:4] * 3, n_train=1, n_test=0)
    corrected = corrected_ttest(BEST[:4] * 3, OTHER[:4] * 3, n_train=11, n_test=1)
    assert plain.p is not None and corrected.p is not None and corrected.p > plain.p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_correction_equals_scipy_ttest_rel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    best = rng.uniform(0.7, 0.9, size=7)
    other = best - rng.normal(0.01, 0.02, size=7)
    result = corrected_ttest(list(best), list(other), n_train=1, n_test=0)
    expected = stats.ttest_rel(best, other)
    assert result.t == pytest.approx(float(expected.statistic), abs=1e-12)
    assert result.p == pytest.approx(float(expected.pvalue), abs=1e-12)


def test_identical_scores_are_within_noise_with_p_one() -> None:
    result = corrected_ttest([0.9, 0.8, 0.7], [0.9, 0.8, 0.7], n_train=100, n_test=50)
    assert (result.mean_diff, result.t, result.p, result.verdict) == (0.0, 0.0, 1.0, WITHIN_NOISE)
    assert result.reason == "identical scores on every fold"
    rounded = corrected_ttest([0.1 + 0.2, 0.7], [0.3, 0.7], n_train=100, n_test=50)  # 0.1 + 0.2 != 0.3
    assert (rounded.p, rounded.verdict) == (1.0, WITHIN_NOISE)


def test_constant_difference_has_p_zero() -> None:
    result = corrected_ttest([0.9, 0.8, 0.7], [0.8, 0.7, 0.6], n_train=100, n_test=50)
    assert result.p == 0.0 and result.t == math.inf and result.verdict == WORSE
    result = corrected_ttest([0.5, 0.5], [0.75, 0.75], n_train=100, n_test=50)
    assert result.p == 0.0 and result.t == -math.inf and result.verdict == BETTER


@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_failed_fit_means_no_test(missing: float | None) -> None:
    result = corrected_ttest([0.9, missing, 0.7, 0.8], [0.9, 0.8, 0.6, missing], n_train=100, n_test=25)
    assert result.verdict == NO_TEST and result.p is None and result.t is None and result.mean_diff is None
    assert result.reason == "failed fit on fold 1, 3"


def test_one_fold_means_no_test() -> None:
    result = corrected_ttest([0.9], [0.8], n_train=100, n_test=25)
    assert result.verdict == NO_TEST and result.reason == "needs at least 2 folds, got 1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"best": [0.9, 0.8], "other": [0.9], "n_train": 10, "n_test": 5}, "same folds"),
        ({"best": [0.9, 0.8], "other": [0.9, 0.7], "n_train": 0, "n_test": 5}, "n_train must be > 0"),
        ({"best": [0.9, 0.8], "other": [0.9, 0.7], "n_train": 10, "n_test": 5, "alpha": 1.5}, "alpha"),
    ],
)
def test_bad_input_is_an_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrected_ttest(**kwargs)  # type: ignore[arg-type]


def test_as_dict_is_json_ready() -> None:
    row = corrected_ttest(BEST, OTHER, n_train=120, n_test=30).as_dict()
    assert set(row) == {"k", "mean_diff", "t", "p", "df", "verdict", "reason"}


def test_stats_imports_without_django() -> None:
    code = (
        "import sys\nimport search.engine.stats\n"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], 'django imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

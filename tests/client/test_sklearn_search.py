"""scikit-learn's own search tests, run through the notebook client against a live server and a real cluster.

Copied with modification from scikit-learn 1.9.1, `sklearn/model_selection/tests/test_search.py`
(https://github.com/scikit-learn/scikit-learn), as dask-ml did for its own searches. scikit-learn is
distributed under the BSD 3-Clause licence:

    Copyright (c) 2007-2024 The scikit-learn developers. All rights reserved.

    Redistribution and use in source and binary forms, with or without modification, are permitted provided
    that the following conditions are met: (a) Redistributions of source code must retain the above copyright
    notice, this list of conditions and the following disclaimer; (b) Redistributions in binary form must
    reproduce the above copyright notice, this list of conditions and the following disclaimer in the
    documentation and/or other materials provided with the distribution; (c) Neither the name of the copyright
    holder nor the names of its contributors may be used to endorse or promote products derived from this
    software without specific prior written permission.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED
    WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A
    PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY
    DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO,
    PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION)
    HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING
    NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
    POSSIBILITY OF SUCH DAMAGE.

The modifications. No user code runs on the server: an estimator is a registry class (a scikit-learn class
named in the spec), a scorer a scikit-learn scorer name. scikit-learn's tests lean on their own estimator
classes (MockClassifier, FailingClassifier, CheckingClassifier, BrokenClassifier, LinearSVCNoScore); each
test's intent is kept with a real scikit-learn estimator, and where the point is the custom class itself the
client's refusal (before anything is uploaded) is asserted instead. Every search is also run by
scikit-learn on the same data and the two are compared (`assert_same_search`), where scikit-learn's test
only checked properties. Where scikit-learn uses an unseeded random CV or sampler, a seed is given, so the
two runs can be compared.

Each scikit-learn test, and what became of it:

- test_grid_search: modified. MockClassifier → DecisionTreeClassifier on data where max_depth 1 scores lower
  and 2, 3 tie (the smallest tied value wins); decision_function / transform absent as in scikit-learn;
  scoring="sklearn" refused.
- test_grid_search_cv_results: as-is (SVC), plus the oracle.
- test_random_search_cv_results: modified. random_state=0 (scikit-learn's is unseeded), plus the oracle.
- test_grid_search_correct_score_results: as-is (LinearSVC, f1 and roc_auc), plus the oracle; the scores are
  compared exactly (scikit-learn: assert_almost_equal).
- test_grid_search_cv_results_multimetric: modified. The dict of make_scorer callables → the same scorers
  by name; the callables' refusal before any upload is asserted.
- test_random_search_cv_results_multimetric: as-is (scorers already by name), plus the oracle.
- test_no_refit: modified. MockClassifier → LinearSVC; the multi-metric case really uses its scoring
  (scikit-learn's loop variable is unused); the bad refit checked with a list of scorer names.
- test_refit: modified. BrokenClassifier (fails a second fit) → LinearSVC, scoring="precision", refitted.
- test_classes__property: as-is (LinearSVC, Ridge), plus the oracle.
- test_n_features_in: modified. RandomizedSearchCV seeded, plus the oracle.
- test_grid_search_one_grid_point: as-is (SVC's dual_coef_ equal to a direct fit's).
- test_grid_search_failing_classifier: modified. FailingClassifier → LinearSVC(dual=True), whose third
  candidate (penalty="l1") fails to fit; error_score 0.0 and NaN as in scikit-learn. The warning's list of
  the errors is test_fit_failures_are_reported_with_their_error (the search's `failures`, grouped by error).
- test_grid_search_classifier_all_fits_fail: modified. FailingClassifier → LinearSVC(penalty="l1",
  dual=True): every fit fails.
- test_grid_search_failing_classifier_raise: modified. As above, with error_score="raise": a ValueError, raised
  once the search is over (the fits run remotely to the end); its naming the fit's error is tested above.
- test_pandas_input: modified. CheckingClassifier (asserts it is given a DataFrame) → DecisionTreeClassifier;
  the server gets arrays, so the check is: results equal scikit-learn's on the DataFrame.
- test_X_as_list, test_y_as_list: modified. CheckingClassifier → DecisionTreeClassifier; results equal
  scikit-learn's on the lists.
- test_grid_search_groups: modified. GroupShuffleSplit and StratifiedShuffleSplit seeded; each group CV is
  refused without groups, before any upload, as in scikit-learn.
- test_search_cv_timing: modified. scikit-learn's failing C=0 is refused up front by the server's parameter
  check (asserted); penalty="l1" with dual=True is the failing fit instead.
- test_grid_search_bad_param_grid: as-is (same exceptions and messages), plus nothing uploaded.
- test_trivial_cv_results_attr: modified. MockClassifier → LinearSVC.
- test_grid_search_when_param_grid_includes_range: modified. MockClassifier → DecisionTreeClassifier,
  max_depth=range(1, 4).
- test_grid_search_score_method: modified. Without LinearSVCNoScore (a custom class).
- test_search_default_iid: as-is (boolean masks as the CV folds).
- test_search_cv_results_rank_tie_breaking: modified. RandomizedSearchCV seeded.
- test_search_cv_results_none_param: as-is. Every score of its regressor is NaN, which scikit-learn still
  refits (the first candidate): test_all_nan_scores_still_refit_the_first_candidate.
- test_grid_search_allows_nans: modified. MockClassifier → LogisticRegression after the SimpleImputer (NaN in
  X is a missing value in an .npz upload, as in scikit-learn).
- test_stochastic_gradient_loss_param: as-is (SGDClassifier, seeded).
- test_grid_search_precomputed_kernel (+ _error_nonsquare): modified. scikit-learn's error for a kernel
  given as a list is left out (the client sends arrays); the non-square kernel's error is kept.
- test_pickle: modified. MockClassifier → DecisionTreeClassifier.
- test_grid_search_error: as-is (X and y of different lengths).
- test_empty_cv_iterator_error: as-is (an exhausted split generator).
- test_refit_callable, test_refit_callable_invalid_type, test_refit_callable_out_bound,
  test_refit_callable_multi_metric, test_callable_multimetric_*: not portable, a callable refit or scorer
  is user code; their refusal is asserted in test_refit_callable.
- test_grid_search_no_score, test_grid_search_pipeline_steps, test_custom_run_search,
  test__custom_fit_no_run_search, test_random_search_bad_cv, test_grid_search_cv_splits_consistency,
  test_transform_inverse_transform_round_trip, test_search_cv_using_minimal_compatible_estimator,
  test_search_callbacks_*: not portable, their point is a custom class (estimator, splitter, callback) or an
  estimator as a parameter value; a custom estimator's refusal is asserted in test_custom_estimator_is_refused.
- test_grid_search_sparse, test_grid_search_sparse_scoring: not portable, data sets are dense (.npz).
- test_unsupervised_grid_search, test_gridsearch_no_predict, test_search_cv_score_samples_*: not portable,
  the server searches classifiers and regressors only (asserted in test_grid_search_transform_is_refused).
- test_SearchCV_with_fit_params, test_scalar_fit_param*, test_*sample_weight*,
  test_multi_metric_search_forwards_metadata, test_score_rejects_params_with_no_routing_enabled: not
  portable, fit parameters and metadata routing are not sent.
- test_grid_search_with_multioutput_data, test_search_with_2d_array, test_gridsearch_nd: not portable, y is
  one column and X two-dimensional.
- test_validate_parameter_input, test_parameter_grid, test_param_sampler, test_parameters_sampler_replacement,
  test_yield_masked_array_*: not applicable, ParameterGrid / ParameterSampler alone, no search.
- test_search_cv_verbose_3, test_search_html_repr, test_array_api_search_cv_classifier,
  test_cv_results_dtype_issue_29074, test_search_with_estimators_issue_29157, test_cv_results_multi_size_array,
  test_searchcv_raise_warning_with_non_finite_score, test_search_cv_pairwise_property_*,
  test_predict_proba_disabled, test_search_train_scores_set_to_false, test_search_estimator_param: not
  ported, printing, HTML, the array API, object-valued parameters, or checks of scikit-learn's own class that
  involve nothing of the server.
"""

from __future__ import annotations

import pickle
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fanout_client import FanoutError, FanoutRandomizedSearchCV, FanoutSearchCV
from numpy.testing import assert_array_almost_equal, assert_array_equal
from scipy.stats import expon
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_blobs, make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import FitFailedWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, make_scorer, recall_score, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    LeaveOneGroupOut,
    LeavePGroupsOut,
    RandomizedSearchCV,
    StratifiedKFold,
    StratifiedShuffleSplit,
)
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tests.client.conftest import Fanout, assert_same_cv_results, assert_same_search, nothing_uploaded, stored

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

X = np.array([[-1, -1], [-2, -1], [1, 1], [2, 1]])
y = np.array([1, 1, 2, 2])

OURS = {GridSearchCV: FanoutSearchCV, RandomizedSearchCV: FanoutRandomizedSearchCV}


def both(SearchCV: Any, *args: Any, X: Any, y: Any, groups: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    """The client's search and scikit-learn's, fitted on the same data with the same arguments."""
    theirs = SearchCV(*args, **kwargs).fit(X, y, groups=groups)
    ours = OURS[SearchCV](*args, **kwargs).fit(X, y, groups=groups)
    return ours, theirs


class MockClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn has no types
    """scikit-learn's dummy classifier of test_search.py: a class of the user's, which cannot be sent."""

    def __init__(self, foo_param: int = 0) -> None:
        self.foo_param = foo_param

    def fit(self, X: Any, Y: Any) -> MockClassifier:
        self.classes_ = np.unique(Y)
        return self

    def predict(self, T: Any) -> Any:
        return T.shape[0]

    def score(self, X: Any = None, Y: Any = None) -> float:
        return 1.0 if self.foo_param > 1 else 0.0


def test_grid_search(fanout: Fanout) -> None:
    # Test that the best estimator contains the right value for max_depth (MockClassifier's foo_param)
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (40, 2))
    y = ((X[:, 0] > 0) & (X[:, 1] > 0)).astype(int)
    clf = DecisionTreeClassifier(random_state=0)
    grid_search, reference = both(GridSearchCV, clf, {"max_depth": [1, 2, 3]}, cv=2, X=X, y=y)
    # make sure it selects the smallest parameter in case of ties
    means = reference.cv_results_["mean_test_score"]
    assert means[0] < means[1] == means[2]  # the test is sane: 2 and 3 tie
    assert grid_search.best_estimator_.max_depth == 2
    assert_same_search(grid_search, reference, X, y)

    assert_array_equal(grid_search.cv_results_["param_max_depth"].data, [1, 2, 3])

    # Smoke test the score etc:
    assert grid_search.score(X, y) == reference.score(X, y)
    assert_array_equal(grid_search.predict_proba(X), reference.predict_proba(X))
    for method in ("decision_function", "transform"):  # a tree has neither; nor has the search
        assert not hasattr(reference, method)
        assert not hasattr(grid_search, method)

    # Test exception handling on scoring
    grid_search.scoring = "sklearn"
    with pytest.raises(ValueError):
        grid_search.fit(X, y)


def test_grid_search_transform_is_refused(fanout: Fanout) -> None:
    # test_unsupervised_grid_search and the transform part of test_grid_search: only classifiers and regressors
    from sklearn.decomposition import PCA

    X, _ = make_blobs(n_samples=50, random_state=0)
    with pytest.raises(ValueError, match="the last step must be a classifier or regressor"):
        FanoutSearchCV(PCA(), {"n_components": [1, 2]}, cv=2).fit(X, np.zeros(50))


def test_custom_estimator_is_refused(fanout: Fanout) -> None:
    # The point of MockClassifier and friends is a class of the user's: no user code runs on the server.
    with pytest.raises((ValueError, TypeError), match="MockClassifier"):
        FanoutSearchCV(MockClassifier(), {"foo_param": [1, 2, 3]}, cv=2).fit(X, y)
    with pytest.raises((ValueError, TypeError), match=r"param_grid|lambda|callable"):
        FanoutSearchCV(LinearSVC(), {"C": [lambda: 1]}, cv=2).fit(X, y)
    assert nothing_uploaded()


def test_refit_callable(fanout: Fanout) -> None:
    # test_refit_callable & co: a callable refit or scorer is user code, refused before anything is sent
    X, y = make_classification(n_samples=100, n_features=4, random_state=42)

    def refit_callable(cv_results: dict[str, Any]) -> int:
        return int(cv_results["mean_test_score"].argmin())

    with pytest.raises((ValueError, TypeError), match="refit"):
        FanoutSearchCV(
            LinearSVC(random_state=42), {"C": [0.01, 0.1, 1]}, scoring="precision", refit=refit_callable
        ).fit(X, y)
    with pytest.raises((ValueError, TypeError), match="scoring"):
        FanoutSearchCV(LinearSVC(random_state=42), {"C": [0.01, 0.1, 1]}, scoring=make_scorer(f1_score)).fit(X, y)
    assert nothing_uploaded()


def check_cv_results_array_types(search: Any, param_keys: Any, score_keys: Any, expected_cv_results_kinds: Any) -> None:
    # Check if the search `cv_results`'s array are of correct types
    cv_results = search.cv_results_
    assert all(isinstance(cv_results[param], np.ma.MaskedArray) for param in param_keys)
    assert {key: cv_results[key].dtype.kind for key in param_keys} == expected_cv_results_kinds
    assert not any(isinstance(cv_results[key], np.ma.MaskedArray) for key in score_keys)
    assert all(cv_results[key].dtype == np.float64 for key in score_keys if not key.startswith("rank"))

    scorer_keys = search.scorer_.keys() if search.multimetric_ else ["score"]

    for key in scorer_keys:
        assert cv_results[f"rank_test_{key}"].dtype == np.int32


def check_cv_results_keys(cv_results: Any, param_keys: Any, score_keys: Any, n_cand: int, extra_keys: Any = ()) -> None:
    # Test the search.cv_results_ contains all the required results
    all_keys = param_keys + score_keys + extra_keys
    assert_array_equal(sorted(cv_results.keys()), sorted((*all_keys, "params")))
    assert all(cv_results[key].shape == (n_cand,) for key in param_keys + score_keys)


SCORE_KEYS = (
    "mean_test_score",
    "mean_train_score",
    "rank_test_score",
    "split0_test_score",
    "split1_test_score",
    "split2_test_score",
    "split0_train_score",
    "split1_train_score",
    "split2_train_score",
    "std_test_score",
    "std_train_score",
    "mean_fit_time",
    "std_fit_time",
    "mean_score_time",
    "std_score_time",
)
PARAM_KEYS = ("param_C", "param_degree", "param_gamma", "param_kernel")


def test_grid_search_cv_results(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=50, n_features=4, random_state=42)

    n_grid_points = 6
    params = [{"kernel": ["rbf"], "C": [1, 10], "gamma": [0.1, 1]}, {"kernel": ["poly"], "degree": [1, 2]}]
    n_candidates = n_grid_points

    search, reference = both(GridSearchCV, SVC(), cv=3, param_grid=params, return_train_score=True, X=X, y=y)
    assert_same_search(search, reference, X, y)
    cv_results = search.cv_results_
    # Check if score and timing are reasonable
    assert all(cv_results["rank_test_score"] >= 1)
    assert all(np.all(cv_results[k] >= 0) for k in SCORE_KEYS if k != "rank_test_score")
    assert all(np.all(cv_results[k] <= 1) for k in SCORE_KEYS if "time" not in k and k != "rank_test_score")
    # Check cv_results structure
    expected_cv_results_kinds = {"param_C": "i", "param_degree": "i", "param_gamma": "f", "param_kernel": "O"}
    check_cv_results_array_types(search, PARAM_KEYS, SCORE_KEYS, expected_cv_results_kinds)
    check_cv_results_keys(cv_results, PARAM_KEYS, SCORE_KEYS, n_candidates)
    # Check masking
    poly_results = [
        (cv_results["param_C"].mask[i] and cv_results["param_gamma"].mask[i] and not cv_results["param_degree"].mask[i])
        for i in range(n_candidates)
        if cv_results["param_kernel"][i] == "poly"
    ]
    assert all(poly_results)
    assert len(poly_results) == 2

    rbf_results = [
        (
            not cv_results["param_C"].mask[i]
            and not cv_results["param_gamma"].mask[i]
            and cv_results["param_degree"].mask[i]
        )
        for i in range(n_candidates)
        if cv_results["param_kernel"][i] == "rbf"
    ]
    assert all(rbf_results)
    assert len(rbf_results) == 4


def test_random_search_cv_results(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=50, n_features=4, random_state=42)

    n_search_iter = 30

    params = [
        {"kernel": ["rbf"], "C": expon(scale=10), "gamma": expon(scale=0.1)},
        {"kernel": ["poly"], "degree": [2, 3]},
    ]
    n_candidates = n_search_iter

    search, reference = both(
        RandomizedSearchCV, SVC(), n_iter=n_search_iter, cv=3, param_distributions=params,
        return_train_score=True, random_state=0, X=X, y=y,
    )  # fmt: skip
    assert_same_search(search, reference, X, y)
    cv_results = search.cv_results_
    # Check results structure
    expected_cv_results_kinds = {"param_C": "f", "param_degree": "i", "param_gamma": "f", "param_kernel": "O"}
    check_cv_results_array_types(search, PARAM_KEYS, SCORE_KEYS, expected_cv_results_kinds)
    check_cv_results_keys(cv_results, PARAM_KEYS, SCORE_KEYS, n_candidates)
    assert all(
        (cv_results["param_C"].mask[i] and cv_results["param_gamma"].mask[i] and not cv_results["param_degree"].mask[i])
        for i in range(n_candidates)
        if cv_results["param_kernel"][i] == "poly"
    )
    assert all(
        (
            not cv_results["param_C"].mask[i]
            and not cv_results["param_gamma"].mask[i]
            and cv_results["param_degree"].mask[i]
        )
        for i in range(n_candidates)
        if cv_results["param_kernel"][i] == "rbf"
    )


def test_grid_search_correct_score_results(fanout: Fanout) -> None:
    # test that correct scores are used
    n_splits = 3
    clf = LinearSVC(random_state=0)
    X, y = make_blobs(random_state=0, centers=2)
    Cs = [0.1, 1, 10]
    for score in ["f1", "roc_auc"]:
        grid_search, reference = both(GridSearchCV, clf, {"C": Cs}, scoring=score, cv=n_splits, X=X, y=y)
        assert_same_search(grid_search, reference, X, y)
        cv_results = grid_search.cv_results_

        # Test scorer names
        result_keys = list(cv_results.keys())
        expected_keys = ("mean_test_score", "rank_test_score", *(f"split{i}_test_score" for i in range(n_splits)))
        assert all(np.isin(expected_keys, result_keys))

        cv = StratifiedKFold(n_splits=n_splits)
        n_splits = grid_search.n_splits_
        for candidate_i, C in enumerate(Cs):
            clf.set_params(C=C)
            cv_scores = np.array(
                [grid_search.cv_results_[f"split{s}_test_score"][candidate_i] for s in range(n_splits)]
            )
            for i, (train, test) in enumerate(cv.split(X, y)):
                clf.fit(X[train], y[train])
                if score == "f1":
                    correct_score = f1_score(y[test], clf.predict(X[test]))
                elif score == "roc_auc":
                    dec = clf.decision_function(X[test])
                    correct_score = roc_auc_score(y[test], dec)
                assert correct_score == cv_scores[i]  # scikit-learn: assert_almost_equal


def compare_cv_results_multimetric_with_single(search_multi: Any, search_acc: Any, search_rec: Any) -> None:
    """Compare multi-metric cv_results with the ensemble of multiple
    single metric cv_results from single metric grid/random search"""

    assert search_multi.multimetric_
    assert_array_equal(sorted(search_multi.scorer_), ("accuracy", "recall"))

    cv_results_multi = search_multi.cv_results_
    cv_results_acc_rec = {re.sub("_score$", "_accuracy", k): v for k, v in search_acc.cv_results_.items()}
    cv_results_acc_rec.update({re.sub("_score$", "_recall", k): v for k, v in search_rec.cv_results_.items()})

    # Check if score and timing are reasonable, also checks if the keys
    # are present
    assert all(
        np.all(cv_results_multi[k] <= 1) for k in ("mean_score_time", "std_score_time", "mean_fit_time", "std_fit_time")
    )

    # Compare the keys, other than time keys, among multi-metric and
    # single metric grid search results. np.testing.assert_equal performs a
    # deep nested comparison of the two cv_results dicts
    np.testing.assert_equal(
        {k: v for k, v in cv_results_multi.items() if not k.endswith("_time")},
        {k: v for k, v in cv_results_acc_rec.items() if not k.endswith("_time")},
    )


def test_grid_search_cv_results_multimetric(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=50, n_features=4, random_state=42)

    n_splits = 3
    params = [{"kernel": ["rbf"], "C": [1, 10], "gamma": [0.1, 1]}, {"kernel": ["poly"], "degree": [1, 2]}]

    # scikit-learn's dict of callables cannot be sent: refused before anything is uploaded.
    callables = {"accuracy": make_scorer(accuracy_score), "recall": make_scorer(recall_score)}
    with pytest.raises((ValueError, TypeError), match="scoring"):
        FanoutSearchCV(SVC(), cv=n_splits, param_grid=params, scoring=callables, refit=False).fit(X, y)
    assert nothing_uploaded()

    grid_searches = []
    for scoring in (["accuracy", "recall"], "accuracy", "recall"):
        grid_search, reference = both(
            GridSearchCV, SVC(), cv=n_splits, param_grid=params, scoring=scoring, refit=False, X=X, y=y
        )
        assert_same_search(grid_search, reference, X, y)
        grid_searches.append(grid_search)

    compare_cv_results_multimetric_with_single(*grid_searches)


def compare_refit_methods_when_refit_with_acc(search_multi: Any, search_acc: Any, refit: Any) -> None:
    """Compare refit multi-metric search methods with single metric methods"""
    assert search_acc.refit == refit
    if refit:
        assert search_multi.refit == "accuracy"
    else:
        assert not search_multi.refit
        return  # search cannot predict/score without refit

    X, y = make_blobs(n_samples=100, n_features=4, random_state=42)
    for method in ("predict", "predict_proba", "predict_log_proba"):
        assert_array_almost_equal(getattr(search_multi, method)(X), getattr(search_acc, method)(X))
    assert search_multi.score(X, y) == pytest.approx(search_acc.score(X, y))
    for key in ("best_index_", "best_score_", "best_params_"):
        assert getattr(search_multi, key) == getattr(search_acc, key)


@pytest.mark.filterwarnings("ignore:The total space of parameters:UserWarning")
def test_random_search_cv_results_multimetric(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=50, n_features=4, random_state=42)

    n_splits = 3
    n_search_iter = 30

    params = {"C": np.logspace(-4, 1, 3)}
    for refit_arg in (True, False):
        refit: bool | str = refit_arg
        random_searches = []
        for scoring in (("accuracy", "recall"), "accuracy", "recall"):
            # If True, for multi-metric pass refit='accuracy'
            if refit and isinstance(scoring, tuple):
                refit = "accuracy"
            clf = LogisticRegression(random_state=42)
            random_search, reference = both(
                RandomizedSearchCV, clf, n_iter=n_search_iter, cv=n_splits, param_distributions=params,
                scoring=scoring, refit=refit, random_state=0, X=X, y=y,
            )  # fmt: skip
            assert_same_search(random_search, reference, X, y)
            random_searches.append(random_search)

        compare_cv_results_multimetric_with_single(*random_searches)
        compare_refit_methods_when_refit_with_acc(random_searches[0], random_searches[1], refit)


def test_no_refit(fanout: Fanout) -> None:
    # Test that GSCV can be used for model selection alone without refitting
    X, y = make_blobs(n_samples=40, centers=2, random_state=0)
    clf = LinearSVC(random_state=0)
    for scoring in [None, ["accuracy", "precision"]]:
        grid_search, reference = both(
            GridSearchCV, clf, {"C": [0.01, 0.1, 1]}, refit=False, cv=2, scoring=scoring, X=X, y=y
        )
        assert_same_search(grid_search, reference, X, y)
        assert not hasattr(grid_search, "best_estimator_")
        # scikit-learn sets best_index_ and best_params_ without a refit for one metric only
        assert hasattr(grid_search, "best_index_") == hasattr(grid_search, "best_params_") == (scoring is None)

        # Make sure the functions predict/transform etc. raise meaningful
        # error messages
        for fn_name in ("predict", "predict_proba", "predict_log_proba", "transform", "inverse_transform"):
            outer_msg = f"has no attribute '{fn_name}'"
            inner_msg = f"`refit=False`. {fn_name} is available only after refitting on the best parameters"
            with pytest.raises(AttributeError, match=outer_msg) as exec_info:
                getattr(grid_search, fn_name)(X)

            assert isinstance(exec_info.value.__cause__, AttributeError)
            assert inner_msg in str(exec_info.value.__cause__)

    # Test that an invalid refit param raises appropriate error messages
    error_msg = "For multi-metric scoring, the parameter refit must be set to a scorer key"
    before = stored()
    for refit in [True, "recall"]:
        with pytest.raises(ValueError, match=error_msg):
            GridSearchCV(clf, {}, refit=refit, scoring=["accuracy", "precision"]).fit(X, y)
        with pytest.raises(ValueError, match=error_msg):
            FanoutSearchCV(clf, {}, refit=refit, scoring=["accuracy", "precision"]).fit(X, y)
    assert stored() == before


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_refit(fanout: Fanout) -> None:
    # Regression test for bug in refitting
    # Simulates re-fitting a broken estimator; this used to break with
    # sparse SVMs.
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)

    clf, reference = both(
        GridSearchCV, LinearSVC(random_state=0), [{"C": [0.001, 1]}], scoring="precision", refit=True, X=X, y=y
    )
    assert_same_search(clf, reference, X, y)


def test_classes__property(fanout: Fanout) -> None:
    # Test that classes_ property matches best_estimator_.classes_
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)
    Cs = [0.1, 1, 10]

    grid_search, reference = both(GridSearchCV, LinearSVC(random_state=0), {"C": Cs}, X=X, y=y)
    assert_same_search(grid_search, reference, X, y)
    assert_array_equal(grid_search.best_estimator_.classes_, grid_search.classes_)

    # Test that regressors do not have a classes_ attribute
    grid_search, reference = both(GridSearchCV, Ridge(), {"alpha": [1.0, 2.0]}, X=X, y=y)
    assert_same_search(grid_search, reference, X, y)
    assert not hasattr(grid_search, "classes_")

    # Test that the grid searcher has no classes_ attribute before it's fit
    grid_search = FanoutSearchCV(LinearSVC(random_state=0), {"C": Cs})
    assert not hasattr(grid_search, "classes_")

    # Test that the grid searcher has no classes_ attribute without a refit
    grid_search, reference = both(GridSearchCV, LinearSVC(random_state=0), {"C": Cs}, refit=False, X=X, y=y)
    assert_same_search(grid_search, reference, X, y)
    assert not hasattr(grid_search, "classes_")


def test_n_features_in(fanout: Fanout) -> None:
    # make sure grid search and random search delegate n_features_in to the
    # best estimator
    n_features = 4
    X, y = make_classification(n_features=n_features, random_state=0)
    gbdt = HistGradientBoostingClassifier()
    param_grid = {"max_iter": [3, 4]}
    gs = FanoutSearchCV(gbdt, param_grid)
    rs = FanoutRandomizedSearchCV(gbdt, param_grid, n_iter=1, random_state=0)
    assert not hasattr(gs, "n_features_in_")
    assert not hasattr(rs, "n_features_in_")
    gs.fit(X, y)
    rs.fit(X, y)
    assert gs.n_features_in_ == n_features
    assert rs.n_features_in_ == n_features
    assert_same_search(gs, GridSearchCV(gbdt, param_grid).fit(X, y), X, y)
    assert_same_search(rs, RandomizedSearchCV(gbdt, param_grid, n_iter=1, random_state=0).fit(X, y), X, y)


def test_grid_search_one_grid_point(fanout: Fanout) -> None:
    X_, y_ = make_classification(n_samples=200, n_features=100, random_state=0)
    param_dict = {"C": [1.0], "kernel": ["rbf"], "gamma": [0.1]}

    clf = SVC(gamma="auto")
    cv = FanoutSearchCV(clf, param_dict)
    cv.fit(X_, y_)

    clf = SVC(C=1.0, kernel="rbf", gamma=0.1)
    clf.fit(X_, y_)

    assert_array_equal(clf.dual_coef_, cv.best_estimator_.dual_coef_)
    assert_same_search(cv, GridSearchCV(SVC(gamma="auto"), param_dict).fit(X_, y_), X_, y_)


def test_grid_search_when_param_grid_includes_range(fanout: Fanout) -> None:
    # Test that the best estimator contains the right value for max_depth
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (40, 2))
    y = ((X[:, 0] > 0) & (X[:, 1] > 0)).astype(int)
    grid_search, reference = both(
        GridSearchCV, DecisionTreeClassifier(random_state=0), {"max_depth": range(1, 4)}, cv=2, X=X, y=y
    )
    assert grid_search.best_estimator_.max_depth == 2
    assert_same_search(grid_search, reference, X, y)


def test_grid_search_bad_param_grid(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=10, n_features=5, random_state=0)
    param_dict: dict[str, Any] = {"C": 1}
    clf = SVC(gamma="auto")
    error_msg = re.escape(
        "Parameter grid for parameter 'C' needs to be a list or "
        "a numpy array, but got 1 (of type int) instead. Single "
        "values need to be wrapped in a list with one element."
    )
    search = FanoutSearchCV(clf, param_dict)
    with pytest.raises(TypeError, match=error_msg):
        search.fit(X, y)

    param_dict = {"C": []}
    clf = SVC()
    error_msg = re.escape("Parameter grid for parameter 'C' need to be a non-empty sequence, got: []")
    search = FanoutSearchCV(clf, param_dict)
    with pytest.raises(ValueError, match=error_msg):
        search.fit(X, y)

    param_dict = {"C": "1,2,3"}
    clf = SVC(gamma="auto")
    error_msg = re.escape(
        "Parameter grid for parameter 'C' needs to be a list or a numpy array, "
        "but got '1,2,3' (of type str) instead. Single values need to be "
        "wrapped in a list with one element."
    )
    search = FanoutSearchCV(clf, param_dict)
    with pytest.raises(TypeError, match=error_msg):
        search.fit(X, y)

    param_dict = {"C": np.ones((3, 2))}
    clf = SVC()
    search = FanoutSearchCV(clf, param_dict)
    with pytest.raises(ValueError):
        search.fit(X, y)
    assert nothing_uploaded()


# The failing "classifier": LinearSVC(dual=True) cannot fit penalty="l1" with its squared hinge loss, a
# ValueError raised in fit (not by the parameter checks, which the server makes before it runs anything).
FAILING_PARAMETER = 2  # the index of the candidate that fails, as FailingClassifier.FAILING_PARAMETER
FAILING_GRID = [{"penalty": ["l2"], "C": [0.1, 1.0]}, {"penalty": ["l1"], "C": [1.0]}]
FAILURE = "The combination of penalty='l1' and loss='squared_hinge' are not supported when dual=True"


@pytest.mark.parametrize("error_score", [0.0, float("nan")])
def test_grid_search_failing_classifier(fanout: Fanout, error_score: float) -> None:
    # GridSearchCV with on_error != 'raise'
    # Ensures that a warning is raised and score reset where appropriate.

    X, y = make_classification(n_samples=20, n_features=10, random_state=0)

    clf = LinearSVC(dual=True)

    # refit=False because we only want to check that errors caused by fits
    # to individual folds will be caught and warnings raised instead. If
    # refit was done, then an exception would be raised on refit and not
    # caught by grid_search (expected behavior), and this would cause an
    # error in this test.
    kwargs: dict[str, Any] = {"scoring": "accuracy", "refit": False, "error_score": error_score}
    # scikit-learn's message goes on with "5 fits failed with the following error … ValueError: …": see
    # test_fit_failures_are_reported_with_their_error below.
    warning_message = re.compile(
        rf"5 fits failed.+total of 15.+The score on these train-test partitions for these parameters will be set to "
        rf"{error_score}",
        flags=re.DOTALL,
    )
    with pytest.warns(FitFailedWarning, match=warning_message):
        reference = GridSearchCV(clf, FAILING_GRID, **kwargs).fit(X, y)
    with pytest.warns(FitFailedWarning, match=warning_message):
        gs = FanoutSearchCV(clf, FAILING_GRID, **kwargs).fit(X, y)
    assert_same_search(gs, reference, X, y)
    n_candidates = len(gs.cv_results_["params"])

    # Ensure that grid scores were set to error_score as required for those fits
    # that are expected to fail.
    def get_cand_scores(i: int) -> Any:
        return np.array([gs.cv_results_[f"split{s}_test_score"][i] for s in range(gs.n_splits_)])

    failing = [i for i in range(n_candidates) if gs.cv_results_["param_penalty"][i] == "l1"]
    assert failing == [FAILING_PARAMETER]
    assert_array_equal(get_cand_scores(FAILING_PARAMETER), np.full(gs.n_splits_, error_score))

    ranks = gs.cv_results_["rank_test_score"]

    # Check that succeeded estimators have lower ranks
    assert ranks[0] <= 2 and ranks[1] <= 2
    # Check that failed estimator has the highest rank
    assert ranks[FAILING_PARAMETER] == 3
    assert gs.best_index_ != FAILING_PARAMETER


def test_grid_search_classifier_all_fits_fail(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=20, n_features=10, random_state=0)

    clf = LinearSVC(penalty="l1", dual=True)
    grid = [{"C": [0.1, 1.0, 10.0]}]

    warning_message = re.compile(
        f"All the 15 fits failed.+15 fits failed with the following error.+ValueError.+{re.escape(FAILURE)}",
        flags=re.DOTALL,
    )
    with pytest.raises(ValueError, match=warning_message):
        GridSearchCV(clf, grid, error_score=0.0).fit(X, y)
    with pytest.raises(ValueError, match=warning_message):
        FanoutSearchCV(clf, grid, error_score=0.0).fit(X, y)


def test_grid_search_failing_classifier_raise(fanout: Fanout) -> None:
    # GridSearchCV with on_error == 'raise' raises the error
    X, y = make_classification(n_samples=20, n_features=10, random_state=0)

    # refit=False because we want to test the behaviour of the grid search part
    kwargs: dict[str, Any] = {"scoring": "accuracy", "refit": False, "error_score": "raise"}

    # The failing fit issues a ValueError so this is what we look for. (scikit-learn raises the fit's own error;
    # the client raises once the search is over, its message naming the failed fits: and the error itself, see
    # test_fit_failures_are_reported_with_their_error.)
    with pytest.raises(ValueError, match=re.escape(FAILURE)):
        GridSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)
    with pytest.raises(ValueError, match="error_score='raise'"):
        FanoutSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)


def test_fit_failures_are_reported_with_their_error(fanout: Fanout) -> None:
    # The part of test_grid_search_failing_classifier(_raise) that names the failure, as scikit-learn does.
    X, y = make_classification(n_samples=20, n_features=10, random_state=0)
    warning_message = re.compile(
        f"5 fits failed with the following error.+ValueError.+{re.escape(FAILURE)}", flags=re.DOTALL
    )
    kwargs: dict[str, Any] = {"scoring": "accuracy", "refit": False}
    with pytest.warns(FitFailedWarning, match=warning_message):
        GridSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)
    with pytest.warns(FitFailedWarning, match=warning_message):
        FanoutSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)
    with pytest.raises(ValueError, match=re.escape(FAILURE)):
        FanoutSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs, error_score="raise").fit(X, y)


def test_pandas_input(fanout: Fanout) -> None:
    # check the search doesn't destroy pandas dataframe
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)

    # X dataframe, y series
    X_df, y_ser = pd.DataFrame(X), pd.Series(y)
    clf = DecisionTreeClassifier(random_state=0)

    grid_search, reference = both(GridSearchCV, clf, {"max_depth": [1, 2, 3]}, cv=2, X=X_df, y=y_ser)
    assert grid_search.score(X_df, y_ser) == reference.score(X_df, y_ser)
    assert_array_equal(grid_search.predict(X_df), reference.predict(X_df))
    assert hasattr(grid_search, "cv_results_")
    assert_same_search(grid_search, reference, X_df, y_ser)


def test_X_as_list(fanout: Fanout) -> None:
    # Pass X as list in GridSearchCV
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)

    clf = DecisionTreeClassifier(random_state=0)
    cv = KFold(n_splits=3)
    grid_search, reference = both(GridSearchCV, clf, {"max_depth": [1, 2, 3]}, cv=cv, X=X.tolist(), y=y)
    assert grid_search.score(X, y) == reference.score(X, y)
    assert hasattr(grid_search, "cv_results_")
    assert_same_search(grid_search, reference, X, y)


def test_y_as_list(fanout: Fanout) -> None:
    # Pass y as list in GridSearchCV
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)

    clf = DecisionTreeClassifier(random_state=0)
    cv = KFold(n_splits=3)
    grid_search, reference = both(GridSearchCV, clf, {"max_depth": [1, 2, 3]}, cv=cv, X=X, y=y.tolist())
    assert grid_search.score(X, y) == reference.score(X, y)
    assert hasattr(grid_search, "cv_results_")
    assert_same_search(grid_search, reference, X, y)


def test_grid_search_groups(fanout: Fanout) -> None:
    # Check if ValueError (when groups is None) propagates to GridSearchCV
    # And also check if groups is correctly passed to the cv object
    rng = np.random.RandomState(0)

    X, y = make_classification(n_samples=15, n_classes=2, random_state=0)
    groups = rng.randint(0, 3, 15)

    clf = LinearSVC(random_state=0)
    grid = {"C": [1]}

    group_cvs = [LeaveOneGroupOut(), LeavePGroupsOut(2), GroupKFold(n_splits=3), GroupShuffleSplit(random_state=0)]
    error_msg = "The 'groups' parameter should not be None."
    for cv in group_cvs:
        gs = FanoutSearchCV(clf, grid, cv=cv)
        before = stored()
        with pytest.raises(ValueError, match=error_msg):
            gs.fit(X, y)
        assert stored() == before
        gs.fit(X, y, groups=groups)
        assert_same_search(gs, GridSearchCV(clf, grid, cv=cv).fit(X, y, groups=groups), X, y)

    non_group_cvs = [StratifiedKFold(), StratifiedShuffleSplit(random_state=0)]
    for cv in non_group_cvs:
        gs = FanoutSearchCV(clf, grid, cv=cv)
        # Should not raise an error
        gs.fit(X, y)
        assert_same_search(gs, GridSearchCV(clf, grid, cv=cv).fit(X, y), X, y)


def test_search_cv_timing(fanout: Fanout) -> None:
    X = [[1], [2], [3], [4]]
    y = [0, 1, 1, 0]

    # scikit-learn's C=0 fails each fit; the server refuses it before running anything (a 400: ValueError).
    with pytest.raises(ValueError, match="C") as refused:
        FanoutSearchCV(LinearSVC(random_state=0), {"C": [0, 1]}, cv=2, error_score=0).fit(X, y)
    assert isinstance(refused.value, FanoutError), refused.value
    assert refused.value.status == 400 and "C" in (refused.value.field or ""), (refused.value.field, refused.value)
    assert not fanout.user.search_set.exists()

    svc = LinearSVC(random_state=0, dual=True)
    grid = {"penalty": ["l1", "l2"]}  # the first candidate fails to fit, as C=0 did
    gs = FanoutSearchCV(svc, grid, cv=2, error_score=0)
    rs = FanoutRandomizedSearchCV(svc, grid, cv=2, error_score=0, n_iter=2, random_state=0)

    for search in (gs, rs):
        with pytest.warns(FitFailedWarning):
            search.fit(X, y)
        assert search.cv_results_["params"][0] == {"penalty": "l1"}
        for key in ["mean_fit_time", "std_fit_time"]:
            # NOTE The precision of time.time in windows is not high
            # enough for the fit/score times to be non-zero for trivial X and y
            assert np.all(search.cv_results_[key] >= 0)
            assert np.all(search.cv_results_[key] < 1)

        for key in ["mean_score_time", "std_score_time"]:
            assert search.cv_results_[key][1] >= 0
            assert search.cv_results_[key][0] == 0.0
            assert np.all(search.cv_results_[key] < 1)

        assert hasattr(search, "refit_time_")
        assert isinstance(search.refit_time_, float)
        assert search.refit_time_ >= 0
    with pytest.warns(FitFailedWarning):
        assert_same_search(gs, GridSearchCV(svc, grid, cv=2, error_score=0).fit(X, y), X, y)


def test_trivial_cv_results_attr(fanout: Fanout) -> None:
    # Test search over a "grid" with only one point.
    clf = LinearSVC(random_state=0)
    grid_search, reference = both(GridSearchCV, clf, {"C": [1]}, cv=2, X=X, y=y)
    assert hasattr(grid_search, "cv_results_")
    assert_same_search(grid_search, reference, X, y)

    random_search, reference = both(RandomizedSearchCV, clf, {"C": [0.5]}, n_iter=1, cv=2, random_state=0, X=X, y=y)
    assert hasattr(random_search, "cv_results_")
    assert_same_search(random_search, reference, X, y)


def test_grid_search_score_method(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=100, n_classes=2, flip_y=0.2, random_state=0)
    clf = LinearSVC(random_state=0)
    grid = {"C": [0.1]}

    search_no_scoring = FanoutSearchCV(clf, grid, scoring=None).fit(X, y)
    search_accuracy = FanoutSearchCV(clf, grid, scoring="accuracy").fit(X, y)
    search_auc = FanoutSearchCV(clf, grid, scoring="roc_auc").fit(X, y)

    score_no_scoring = search_no_scoring.score(X, y)
    score_accuracy = search_accuracy.score(X, y)
    score_auc = search_auc.score(X, y)

    # ensure the test is sane
    assert score_auc < 1.0
    assert score_accuracy < 1.0
    assert score_auc != score_accuracy

    assert score_accuracy == score_no_scoring
    assert score_auc == GridSearchCV(clf, grid, scoring="roc_auc").fit(X, y).score(X, y)
    assert score_accuracy == GridSearchCV(clf, grid, scoring="accuracy").fit(X, y).score(X, y)


def test_search_default_iid(fanout: Fanout) -> None:
    # noise-free simple 2d-data
    X, y = make_blobs(
        centers=[[0, 0], [1, 0], [0, 1], [1, 1]], random_state=0, cluster_std=0.1, shuffle=False, n_samples=80
    )
    # split dataset into two folds that are not iid
    # first one contains data of all 4 blobs, second only from two.
    mask = np.ones(X.shape[0], dtype=bool)
    mask[np.where(y == 1)[0][::2]] = 0
    mask[np.where(y == 2)[0][::2]] = 0
    # this leads to perfect classification on one fold and a score of 1/3 on
    # the other
    # create "cv" for splits
    cv = [[mask, ~mask], [~mask, mask]]

    for SearchCV, specialized_params in (
        (GridSearchCV, {"param_grid": {"C": [1, 10]}}),
        (RandomizedSearchCV, {"param_distributions": {"C": [1, 10]}, "n_iter": 2, "random_state": 0}),
    ):
        common_params = {"estimator": SVC(), "cv": cv, "return_train_score": True}
        search, reference = both(SearchCV, **common_params, **specialized_params, X=X, y=y)
        assert_same_search(search, reference, X, y)

        test_cv_scores = np.array([search.cv_results_[f"split{s}_test_score"][0] for s in range(search.n_splits_)])
        test_mean = search.cv_results_["mean_test_score"][0]
        test_std = search.cv_results_["std_test_score"][0]

        train_cv_scores = np.array([search.cv_results_[f"split{s}_train_score"][0] for s in range(search.n_splits_)])
        train_mean = search.cv_results_["mean_train_score"][0]
        train_std = search.cv_results_["std_train_score"][0]

        assert search.cv_results_["param_C"][0] == 1
        # scores are the same as above
        np.testing.assert_allclose(test_cv_scores, [1, 1.0 / 3.0])
        np.testing.assert_allclose(train_cv_scores, [1, 1])
        # Unweighted mean/std is used
        assert test_mean == pytest.approx(np.mean(test_cv_scores))
        assert test_std == pytest.approx(np.std(test_cv_scores))

        # For the train scores, we do not take a weighted mean irrespective of
        # i.i.d. or not
        assert train_mean == pytest.approx(1)
        assert train_std == pytest.approx(0)


def test_search_cv_results_rank_tie_breaking(fanout: Fanout) -> None:
    X, y = make_blobs(n_samples=50, random_state=42)

    # The two C values are close enough to give similar models
    # which would result in a tie of their mean cv-scores
    param_grid = {"C": [1, 1.001, 0.001]}

    grid = both(GridSearchCV, SVC(), param_grid=param_grid, return_train_score=True, X=X, y=y)
    random = both(
        RandomizedSearchCV, SVC(), n_iter=3, param_distributions=param_grid, return_train_score=True,
        random_state=0, X=X, y=y,
    )  # fmt: skip

    for search, reference in (grid, random):
        assert_same_search(search, reference, X, y)
        cv_results = search.cv_results_
        # Check tie breaking strategy -
        # Check that there is a tie in the mean scores between
        # candidates 1 and 2 alone
        c1, c2, c3 = (search.cv_results_["params"].index({"C": c}) for c in param_grid["C"])
        assert cv_results["mean_test_score"][c1] == pytest.approx(cv_results["mean_test_score"][c2])
        assert cv_results["mean_train_score"][c1] == pytest.approx(cv_results["mean_train_score"][c2])
        assert not np.allclose(cv_results["mean_test_score"][c2], cv_results["mean_test_score"][c3])
        assert not np.allclose(cv_results["mean_train_score"][c2], cv_results["mean_train_score"][c3])
        # 'min' rank should be assigned to the tied candidates
        assert_array_equal(search.cv_results_["rank_test_score"][[c1, c2, c3]], [1, 1, 3])


def test_search_cv_results_none_param(fanout: Fanout) -> None:
    X, y = [[1], [2], [3], [4], [5]], [0, 0, 0, 0, 1]
    estimators = (DecisionTreeRegressor(), DecisionTreeClassifier())
    est_parameters = {"random_state": [0, None]}
    cv = KFold()

    for est in estimators:
        grid_search, reference = both(GridSearchCV, est, est_parameters, cv=cv, X=X, y=y)
        assert_array_equal(grid_search.cv_results_["param_random_state"], [0, None])
        assert_same_cv_results(grid_search.cv_results_, reference.cv_results_)


def test_all_nan_scores_still_refit_the_first_candidate(fanout: Fanout) -> None:
    # What test_search_cv_results_none_param's regressor search leaves besides cv_results_: best_* and a model.
    X, y = [[1], [2], [3], [4], [5]], [0, 0, 0, 0, 1]
    est, grid = DecisionTreeRegressor(random_state=0), {"max_depth": [1, 2]}
    search, reference = both(GridSearchCV, est, grid, cv=KFold(), X=X, y=y)
    assert np.isnan(reference.cv_results_["mean_test_score"]).all() and reference.best_index_ == 0
    assert_same_search(search, reference, X, y)


def test_grid_search_allows_nans(fanout: Fanout) -> None:
    # Test GridSearchCV with SimpleImputer
    X = np.arange(20, dtype=np.float64).reshape(5, -1)
    X[2, :] = np.nan
    y = [0, 0, 1, 1, 1]
    p = Pipeline(
        [
            ("imputer", SimpleImputer(strategy="mean", missing_values=np.nan)),
            ("classifier", LogisticRegression()),
        ]
    )
    search, reference = both(GridSearchCV, p, {"classifier__C": [0.1, 1.0, 10.0]}, cv=2, X=X, y=y)
    assert_same_search(search, reference, X, y)


def test_stochastic_gradient_loss_param(fanout: Fanout) -> None:
    # Make sure the predict_proba works when loss is specified
    # as one of the parameters in the param_grid.
    param_grid = {"loss": ["log_loss"]}
    X = np.arange(24).reshape(6, -1)
    y = [0, 0, 0, 1, 1, 1]
    clf = FanoutSearchCV(estimator=SGDClassifier(loss="hinge", random_state=0), param_grid=param_grid, cv=3)

    # When the estimator is not fitted, `predict_proba` is not available as the
    # loss is 'hinge'.
    assert not hasattr(clf, "predict_proba")
    clf.fit(X, y)
    clf.predict_proba(X)
    clf.predict_log_proba(X)
    reference = GridSearchCV(SGDClassifier(loss="hinge", random_state=0), param_grid, cv=3).fit(X, y)
    assert_same_search(clf, reference, X, y)

    # Make sure `predict_proba` is not available when setting loss=['hinge']
    # in param_grid
    param_grid = {"loss": ["hinge"]}
    clf = FanoutSearchCV(estimator=SGDClassifier(loss="hinge", random_state=0), param_grid=param_grid, cv=3)
    assert not hasattr(clf, "predict_proba")
    clf.fit(X, y)
    assert not hasattr(clf, "predict_proba")


def test_grid_search_precomputed_kernel(fanout: Fanout) -> None:
    # Test that grid search works when the input features are given in the
    # form of a precomputed kernel matrix
    X_, y_ = make_classification(n_samples=200, n_features=100, random_state=0)

    # compute the training kernel matrix corresponding to the linear kernel
    K_train = np.dot(X_[:180], X_[:180].T)
    y_train = y_[:180]

    clf = SVC(kernel="precomputed")
    cv, reference = both(GridSearchCV, clf, {"C": [0.1, 1.0]}, X=K_train, y=y_train)

    assert cv.best_score_ >= 0

    # compute the test kernel matrix
    K_test = np.dot(X_[180:], X_[:180].T)
    y_test = y_[180:]

    y_pred = cv.predict(K_test)

    assert np.mean(y_pred == y_test) >= 0
    assert_same_search(cv, reference, K_test)

    # a precomputed training kernel must be square (test_grid_search_precomputed_kernel_error_nonsquare)
    with pytest.raises(ValueError):
        FanoutSearchCV(clf, {"C": [0.1, 1.0]}).fit(np.zeros((10, 20)), np.ones((10,)))


@pytest.mark.parametrize("SearchCV", [GridSearchCV, RandomizedSearchCV])
def test_pickle(fanout: Fanout, SearchCV: Any) -> None:
    # Test that a fit search can be pickled
    X = np.arange(100).reshape(10, 10)
    y = np.array([0] * 5 + [1] * 5)
    clf = DecisionTreeClassifier(random_state=0)
    extra = {"n_iter": 3, "random_state": 0} if SearchCV is RandomizedSearchCV else {}
    search = OURS[SearchCV](clf, {"max_depth": [1, 2, 3]}, refit=True, cv=2, **extra).fit(X, y)
    search_pickled = pickle.loads(pickle.dumps(search))
    assert_array_equal(search.predict(X), search_pickled.predict(X))
    assert_same_cv_results(search_pickled.cv_results_, search.cv_results_)
    assert search_pickled.search_id_ == search.search_id_


def test_grid_search_error(fanout: Fanout) -> None:
    # Test that grid search will capture errors on data with different length
    X_, y_ = make_classification(n_samples=200, n_features=100, random_state=0)

    clf = LinearSVC()
    cv = FanoutSearchCV(clf, {"C": [0.1, 1.0]})
    with pytest.raises(ValueError):
        cv.fit(X_[:180], y_)
    assert nothing_uploaded()


def test_empty_cv_iterator_error(fanout: Fanout) -> None:
    # create cv
    cv = KFold(n_splits=3).split(X)

    # pop all of it, this should cause the expected ValueError
    [u for u in cv]
    # cv is empty now

    ridge = FanoutRandomizedSearchCV(Ridge(), {"alpha": [1e-3, 1e-2, 1e-1]}, cv=cv)

    # assert that this raises an error
    with pytest.raises(
        ValueError, match=re.escape("No fits were performed. Was the CV iterator empty? Were there no candidates?")
    ):
        ridge.fit(X, y)

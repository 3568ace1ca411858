"""Differential: `FanoutSearchCV` / `FanoutRandomizedSearchCV` through the live API and a real cluster give what
`GridSearchCV` / `RandomizedSearchCV` give on the same data, bit for bit (every `cv_results_` key but the
timings, the best candidate and score, the refitted model's answers).

Each case is one kind of input the client must carry to the server unchanged: a pipeline with two scorers
and `refit` by name, a regressor, groups, the user's own shuffled CV object, pandas input with string
labels, and scipy.stats distributions with a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fanout_client import FanoutRandomizedSearchCV, FanoutSearchCV
from numpy.testing import assert_array_equal
from scipy.stats import expon, loguniform, randint
from sklearn import datasets as skd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from search.models import Search, Status
from tests.client.conftest import Fanout, assert_same_search

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def both_grid(estimator: Any, grid: Any, X: Any, y: Any, groups: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    theirs = GridSearchCV(estimator, grid, **kwargs).fit(X, y, groups=groups)
    ours = FanoutSearchCV(estimator, grid, **kwargs).fit(X, y, groups=groups)
    return ours, theirs


def test_a_pipeline_with_two_scorers_refitted_by_name(fanout: Fanout) -> None:
    X, y = skd.load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
    ours, theirs = both_grid(
        pipe, grid, X, y, cv=3, scoring=["accuracy", "f1_macro"], refit="f1_macro", return_train_score=True
    )
    assert_same_search(ours, theirs, X, y)
    assert {"mean_train_accuracy", "split2_train_f1_macro", "rank_test_f1_macro"} <= set(ours.cv_results_)
    assert ours.best_estimator_.named_steps.keys() == theirs.best_estimator_.named_steps.keys()
    # The search is the user's, finished, and its page is where the client says.
    search = Search.objects.get(pk=ours.search_id_)
    assert search.owner == fanout.user and search.status == Status.DONE
    assert search.n_fits == search.n_fits_done == 4 * 3
    assert ours.search_url_.startswith(fanout.url) and str(ours.search_id_) in ours.search_url_


def test_a_regressor_with_two_scorers(fanout: Fanout) -> None:
    X, y = skd.load_diabetes(return_X_y=True)
    X, y = X[:200], y[:200]
    grid = {"alpha": [0.01, 0.1, 1.0, 10.0]}
    ours, theirs = both_grid(Ridge(), grid, X, y, cv=4, scoring=["r2", "neg_mean_squared_error"], refit="r2")
    assert_same_search(ours, theirs, X, y)
    assert not hasattr(ours, "classes_")


def test_group_k_fold_with_groups(fanout: Fanout) -> None:
    X, y = skd.make_classification(n_samples=150, n_features=6, n_informative=4, random_state=0)
    groups = np.random.RandomState(0).permutation(np.repeat(np.arange(10), 15))
    grid = {"max_depth": [2, 4, None], "min_samples_leaf": [1, 5]}
    tree = DecisionTreeClassifier(random_state=0)
    ours, theirs = both_grid(tree, grid, X, y, groups=groups, cv=GroupKFold(n_splits=3))
    assert_same_search(ours, theirs, X, y)
    # The folds really were the groups': without them scikit-learn's own splitter refuses, before any upload.
    with pytest.raises(ValueError, match="The 'groups' parameter should not be None"):
        FanoutSearchCV(tree, grid, cv=GroupKFold(n_splits=3)).fit(X, y)


def test_the_users_own_shuffled_k_fold(fanout: Fanout) -> None:
    X, y = skd.load_breast_cancer(return_X_y=True)
    X, y = X[:200], y[:200]
    grid = {"n_neighbors": [3, 9], "weights": ["uniform", "distance"]}
    cv = KFold(n_splits=4, shuffle=True, random_state=7)
    ours, theirs = both_grid(KNeighborsClassifier(), grid, X, y, cv=cv, scoring="roc_auc")
    assert_same_search(ours, theirs, X, y)
    # Not the unshuffled folds: those give other scores.
    plain = GridSearchCV(KNeighborsClassifier(), grid, cv=4, scoring="roc_auc").fit(X, y)
    assert not np.array_equal(plain.cv_results_["split0_test_score"], ours.cv_results_["split0_test_score"])


@pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")
def test_pandas_data_frame_and_series_with_string_labels(fanout: Fanout) -> None:
    iris = skd.load_iris(as_frame=True)
    X_df: pd.DataFrame = iris.data
    y_ser = pd.Series(np.asarray(iris.target_names)[iris.target], name="species", index=X_df.index)
    pipe = make_pipeline(StandardScaler(), SVC())
    grid = {"svc__C": [0.1, 1.0, 10.0]}
    ours, theirs = both_grid(pipe, grid, X_df, y_ser, cv=3)
    assert_same_search(ours, theirs, X_df, y_ser)
    assert ours.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert_array_equal(ours.predict(X_df.to_numpy()), theirs.predict(X_df.to_numpy()))


def test_cv_as_a_generator_of_splits_and_estimator_n_jobs(fanout: Fanout) -> None:
    """A one-shot iterable of (train, test) is read once, as scikit-learn reads it; an estimator's own n_jobs
    stays the user's on the refitted model (the server sets its own)."""
    X, y = skd.load_breast_cancer(return_X_y=True)
    X, y = X[:150], y[:150]
    grid = {"n_neighbors": [5, 11]}
    knn = KNeighborsClassifier(n_jobs=2)
    theirs = GridSearchCV(knn, grid, cv=KFold(3, shuffle=True, random_state=1).split(X)).fit(X, y)
    ours = FanoutSearchCV(knn, grid, cv=KFold(3, shuffle=True, random_state=1).split(X)).fit(X, y)
    assert_same_search(ours, theirs, X, y)
    assert ours.best_estimator_.n_jobs == 2


def test_pandas_input_keeps_the_feature_names(fanout: Fanout) -> None:
    """scikit-learn's search fitted on a DataFrame knows its columns (`feature_names_in_`, delegated to the
    refitted model); so must the client's."""
    iris = skd.load_iris(as_frame=True)
    grid = {"max_depth": [2, 3]}
    tree = DecisionTreeClassifier(random_state=0)
    ours, theirs = both_grid(tree, grid, iris.data, iris.target, cv=3)
    assert_same_search(ours, theirs, iris.data, iris.target)
    assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    assert_array_equal(ours.best_estimator_.feature_names_in_, theirs.best_estimator_.feature_names_in_)


def test_randomized_search_with_scipy_distributions_and_a_seed(fanout: Fanout) -> None:
    X, y = skd.make_classification(n_samples=120, n_features=5, n_informative=3, random_state=1)
    distributions = {"C": loguniform(1e-2, 1e2), "gamma": expon(scale=0.1), "kernel": ["rbf", "poly"]}
    kwargs: dict[str, Any] = {"n_iter": 6, "random_state": 0, "cv": 3}
    theirs = RandomizedSearchCV(SVC(), distributions, **kwargs).fit(X, y)
    ours = FanoutRandomizedSearchCV(SVC(), distributions, **kwargs).fit(X, y)
    assert_same_search(ours, theirs, X, y)
    assert len(ours.cv_results_["params"]) == 6


def test_randomized_search_of_an_integer_distribution_and_a_list_grid(fanout: Fanout) -> None:
    X, y = skd.load_iris(return_X_y=True)
    distributions = [{"max_depth": randint(1, 6), "criterion": ["gini", "entropy"]}, {"min_samples_split": [2, 10]}]
    kwargs: dict[str, Any] = {"n_iter": 5, "random_state": 3, "cv": 3}
    tree = DecisionTreeClassifier(random_state=0)
    theirs = RandomizedSearchCV(tree, distributions, **kwargs).fit(X, y)
    ours = FanoutRandomizedSearchCV(tree, distributions, **kwargs).fit(X, y)
    assert_same_search(ours, theirs, X, y)


def test_cv_results_keys_come_in_scikit_learns_order(fanout: Fanout) -> None:
    """`pd.DataFrame(search.cv_results_)` shows the columns as scikit-learn's would."""
    X, y = skd.load_iris(return_X_y=True)
    grid = [{"kernel": ["linear"], "C": [1, 10]}, {"kernel": ["rbf"], "gamma": [0.1, 1.0]}]
    ours, theirs = both_grid(SVC(), grid, X, y, cv=3, return_train_score=True)
    assert list(ours.cv_results_) == list(theirs.cv_results_)
    assert_array_equal(pd.DataFrame(ours.cv_results_).columns, pd.DataFrame(theirs.cv_results_).columns)

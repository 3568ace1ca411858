"""The client's estimator → spec conversion, offline: what is sent for an estimator, a pipeline with the user's
own step names, a grid, distributions, scoring and cv, and what is refused before any request is made."""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]  # no stubs installed
import pytest
import scipy.sparse
import scipy.stats
from fanout_client import FanoutRandomizedSearchCV, FanoutSearchCV, FanoutSpecError, NotSendableError
from fanout_client import search as search_module
from fanout_client._data import as_data
from fanout_client._spec import (
    EstimatorSpec,
    check_registry,
    cv_spec,
    distributions_spec,
    estimator_spec,
    grid_spec,
    scoring_spec,
)
from fanout_client._state import in_user_terms
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import make_classification
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, ShuffleSplit, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

UNROUTABLE = "http://127.0.0.1:9"  # nothing listens there: a request would be a connection error
X, y = make_classification(n_samples=40, n_features=4, random_state=0)
REGISTRY = [
    {"name": "SVC", "kind": "classifier", "module": "sklearn.svm"},
    {"name": "LogisticRegression", "kind": "classifier", "module": "sklearn.linear_model"},
    {"name": "StandardScaler", "kind": "transformer", "module": "sklearn.preprocessing"},
    {"name": "RandomForestClassifier", "kind": "classifier", "module": "sklearn.ensemble"},
]


class UserSVC(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """A user's own class, named like scikit-learn's."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: Any, y: Any) -> Any:
        return self


UserSVC.__name__ = UserSVC.__qualname__ = "SVC"


@pytest.fixture
def no_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any Session made by `fit` fails the test: a refusal must come before the first request."""

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fit made a request before refusing")

    monkeypatch.setattr(search_module, "Session", forbidden)


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------


def test_an_estimator_sends_its_class_and_only_its_non_default_parameters() -> None:
    spec = estimator_spec(SVC(C=np.float64(2.5), kernel="linear", gamma="scale", class_weight=None))
    assert spec.spec_estimator() == "SVC"
    assert spec.params == {"C": 2.5, "kernel": "linear"}
    assert type(spec.params["C"]) is float
    assert spec.steps == () and spec.local == {}


def test_n_jobs_is_kept_locally_not_sent() -> None:
    spec = estimator_spec(RandomForestClassifier(n_jobs=4, random_state=0))
    assert spec.params == {"random_state": 0}
    assert spec.local == {"n_jobs": 4}


def test_a_pipeline_with_its_own_step_names_is_sent_with_make_pipelines_names() -> None:
    pipe = Pipeline([("scale", StandardScaler(with_mean=False)), ("clf", SVC(C=3.0))])
    spec = estimator_spec(pipe)
    assert spec.spec_estimator() == ["StandardScaler", "SVC"]
    assert spec.params == {"standardscaler__with_mean": False, "svc__C": 3.0}
    assert spec.steps == (("scale", "standardscaler"), ("clf", "svc"))
    assert spec.to_server("clf__C") == "svc__C" and spec.to_user("svc__C") == "clf__C"
    assert spec.to_server("scale__with_std") == "standardscaler__with_std"
    assert spec.to_server("other__x") == "other__x"
    grid = grid_spec({"clf__C": [0.1, 1], "scale__with_std": [True, False]}, pipe, spec)
    assert grid == [{"svc__C": [0.1, 1], "standardscaler__with_std": [True, False]}]


def test_a_pipeline_of_two_steps_of_one_class_is_numbered_as_make_pipeline_numbers_them() -> None:
    pipe = Pipeline([("a", StandardScaler()), ("b", StandardScaler(with_std=False)), ("m", LogisticRegression())])
    spec = estimator_spec(pipe)
    assert [server for _, server in spec.steps] == ["standardscaler-1", "standardscaler-2", "logisticregression"]
    assert spec.params == {"standardscaler-2__with_std": False}
    assert spec.to_user("standardscaler-2__with_std") == "b__with_std"


def test_a_pipeline_of_one_step_is_sent_as_its_estimator() -> None:
    pipe = Pipeline([("clf", SVC(C=2.0))], verbose=True)
    spec = estimator_spec(pipe)
    assert spec.spec_estimator() == "SVC" and spec.params == {"C": 2.0} and spec.local == {"verbose": True}
    assert spec.to_server("clf__gamma") == "gamma" and spec.to_user("gamma") == "clf__gamma"
    assert grid_spec({"clf__gamma": [0.1]}, pipe, spec) == [{"gamma": [0.1]}]
    forest = estimator_spec(Pipeline([("rf", RandomForestClassifier(n_jobs=2))]))
    assert forest.params == {} and forest.local == {"rf__n_jobs": 2}


def test_make_pipeline_names_need_no_translation() -> None:
    pipe = make_pipeline(StandardScaler(), SVC())
    spec = estimator_spec(pipe)
    assert spec.to_server("svc__C") == "svc__C"
    assert not spec.reorders(["svc__C", "standardscaler__with_mean"])


@pytest.mark.parametrize(
    ("estimator", "match"),
    [
        (UserSVC(), r"test_spec\.SVC cannot be sent to Fanout: it is not a scikit-learn class"),
        (make_pipeline(StandardScaler(), UserSVC()), r"Pipeline step 'svc'.*not a scikit-learn class"),
        (Pipeline([("scale", "passthrough"), ("svc", SVC())]), r"Pipeline step 'scale'"),
        (Pipeline([("inner", make_pipeline(SVC()))]), "nested pipelines"),
        (Pipeline([("svc", SVC())], memory="/tmp/cache"), "'memory' of Pipeline"),
        (BaggingClassifier(estimator=SVC()), r"Parameter 'estimator' of BaggingClassifier.*estimator instance"),
        (SVC(C=float("nan")), r"Parameter 'C' of SVC.*nan"),
        (RandomForestClassifier(random_state=np.random.RandomState(0)), r"'random_state'.*RandomState object"),
        (MinMaxScaler(feature_range=(0, 2)), r"'feature_range'.*JSON list \[0, 2\].*tuple"),
    ],
)
def test_what_cannot_be_sent_is_refused_naming_it(estimator: Any, match: str) -> None:
    with pytest.raises(NotSendableError, match=match):
        estimator_spec(estimator)


def test_a_tuple_the_estimator_also_takes_as_a_list_is_sent_as_a_list() -> None:
    spec = estimator_spec(MLPClassifier(hidden_layer_sizes=(10, 5)))
    assert spec.params == {"hidden_layer_sizes": [10, 5]}


def test_the_registry_check_wants_the_very_class_of_the_registry() -> None:
    check_registry(estimator_spec(make_pipeline(StandardScaler(), SVC())), REGISTRY)
    with pytest.raises(NotSendableError, match="MLPClassifier is not in the Fanout server's estimator registry"):
        check_registry(estimator_spec(MLPClassifier()), REGISTRY)
    with pytest.raises(NotSendableError, match=r"the server's SVC is sklearn\.svm\.SVC, another class"):
        check_registry(EstimatorSpec(classes=(UserSVC,)), REGISTRY)


# ---------------------------------------------------------------------------------------------
# Grids, distributions, scoring
# ---------------------------------------------------------------------------------------------


def test_grid_values_become_json_values() -> None:
    spec = estimator_spec(SVC())
    grid = grid_spec(
        [{"C": np.logspace(-1, 1, 3), "kernel": ["rbf"]}, {"kernel": ("linear",), "shrinking": [np.bool_(True)]}],
        SVC(),
        spec,
    )
    assert grid == [{"C": [0.1, 1.0, 10.0], "kernel": ["rbf"]}, {"kernel": ["linear"], "shrinking": [True]}]
    assert all(type(v) is float for v in grid[0]["C"])
    assert type(grid[1]["shrinking"][0]) is bool
    assert grid_spec({"hidden_layer_sizes": [(10,), (5, 5)]}, MLPClassifier(), estimator_spec(MLPClassifier())) == [
        {"hidden_layer_sizes": [[10], [5, 5]]}
    ]


@pytest.mark.parametrize(
    ("grid", "exc", "match"),
    [
        ({"C": [lambda: 1]}, NotSendableError, r"Parameter grid for parameter 'C' cannot be sent to Fanout: a lambda"),
        ({"C": [len]}, NotSendableError, r"'C'.*a callable \(len\)"),
        ({"C": [float("inf")]}, NotSendableError, r"'C'.*inf"),
        ({"C": [{"a": 1}]}, NotSendableError, r"'C'.*a dict"),
        ({"kernel": [SVC]}, NotSendableError, r"'kernel'.*a class"),
        ({"n_jobs": [1, 2]}, NotSendableError, r"'n_jobs'.*parallelism"),
        ({"C": 1}, TypeError, "Parameter grid for parameter 'C' needs to be a list or a numpy array"),
        ({"C": []}, ValueError, "need to be a non-empty sequence"),
        ([], ValueError, "No fits were performed"),
    ],
)
def test_bad_grids_are_refused_with_scikit_learns_message_or_ours(grid: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        grid_spec(grid, SVC(), estimator_spec(SVC()))


def test_a_pipeline_grid_over_a_whole_step_or_a_pipeline_parameter_is_refused() -> None:
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SVC())])
    spec = estimator_spec(pipe)
    with pytest.raises(NotSendableError, match=r"'clf' cannot be sent.*steps and its own parameters are fixed"):
        grid_spec({"clf": [SVC(), LogisticRegression()]}, pipe, spec)
    with pytest.raises(NotSendableError, match=r"'clf__C'.*estimator instance"):
        grid_spec({"clf__C": [SVC()]}, pipe, spec)


def test_frozen_distributions_are_sent_by_name() -> None:
    dists = {"C": scipy.stats.loguniform(1e-3, 1e3), "gamma": scipy.stats.expon(scale=0.1), "kernel": ["rbf"]}
    assert distributions_spec(dists, SVC(), estimator_spec(SVC())) == [
        {
            "C": {"distribution": "loguniform", "args": [0.001, 1000.0], "kwargs": {}},
            "gamma": {"distribution": "expon", "args": [], "kwargs": {"scale": 0.1}},
            "kernel": ["rbf"],
        }
    ]
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SVC())])
    sent = distributions_spec([{"clf__C": scipy.stats.randint(1, 5, loc=np.int64(1))}], pipe, estimator_spec(pipe))
    assert sent == [{"svc__C": {"distribution": "randint", "args": [1, 5], "kwargs": {"loc": 1}}}]


def test_a_distribution_that_is_not_scipy_stats_own_is_refused() -> None:
    class Sampler:
        def rvs(self, random_state: Any = None) -> float:
            return 1.0

    class Mine(scipy.stats.rv_continuous):  # type: ignore[misc]  # scipy is untyped
        def _pdf(self, x: Any) -> Any:
            return np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)

    for value in (Sampler(), Mine(name="norm")()):
        with pytest.raises(NotSendableError, match=r"Parameter distribution for parameter 'C'.*scipy.stats' own"):
            distributions_spec({"C": value}, SVC(), estimator_spec(SVC()))


def test_step_names_that_reorder_the_sampled_parameters_warn() -> None:
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SVC())])  # clf < scale, but standardscaler < svc
    dists = {"clf__C": scipy.stats.uniform(1, 2), "scale__with_mean": [True, False]}
    with pytest.warns(UserWarning, match="differ from RandomizedSearchCV's"):
        distributions_spec(dists, pipe, estimator_spec(pipe))


def test_scoring_is_sent_by_name_only() -> None:
    assert scoring_spec(None) is None
    assert scoring_spec("accuracy") == "accuracy"
    assert scoring_spec(("accuracy", "f1_macro")) == ["accuracy", "f1_macro"]
    for bad in (make_scorer(accuracy_score), {"acc": "accuracy"}, accuracy_score, ["accuracy", len]):
        with pytest.raises(NotSendableError, match=r"scoring=.*cannot be sent to Fanout"):
            scoring_spec(bad)


# ---------------------------------------------------------------------------------------------
# cv and data
# ---------------------------------------------------------------------------------------------


def _as_pairs(spec: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
    return [(train, test) for train, test in spec["splits"]]


@pytest.mark.parametrize(
    "cv", [KFold(4, shuffle=True, random_state=7), StratifiedKFold(3), ShuffleSplit(3, random_state=0)]
)
def test_a_cv_object_is_sent_as_the_users_own_folds(cv: Any) -> None:
    spec = cv_spec(cv, X, y, None, classifier=True)
    expected = [(train.tolist(), test.tolist()) for train, test in copy.deepcopy(cv).split(X, y)]
    assert _as_pairs(spec) == expected
    assert all(type(i) is int for train, test in spec["splits"] for i in train + test)


def test_group_folds_use_the_groups_and_need_them() -> None:
    groups = np.repeat(np.arange(8), 5)
    spec = cv_spec(GroupKFold(4), X, y, groups, classifier=True)
    assert _as_pairs(spec) == [(tr.tolist(), te.tolist()) for tr, te in GroupKFold(4).split(X, y, groups)]
    with pytest.raises(ValueError, match="The 'groups' parameter should not be None"):
        cv_spec(LeaveOneGroupOut(), X, y, None, classifier=True)


def test_a_number_of_folds_is_sent_as_a_number() -> None:
    assert cv_spec(None, X, y, None, classifier=True) == {"n_splits": 5}
    assert cv_spec(3, X, y, None, classifier=True) == {"n_splits": 3}
    assert cv_spec(np.int64(4), X, y, None, classifier=False) == {"n_splits": 4}
    with pytest.raises(ValueError, match="n_splits=2 or more"):
        cv_spec(1, X, y, None, classifier=True)


def test_explicit_folds_boolean_masks_and_an_empty_iterator() -> None:
    mask = np.arange(len(X)) % 2 == 0
    spec = cv_spec([(mask, ~mask), [np.flatnonzero(~mask), np.flatnonzero(mask)]], X, y, None, classifier=True)
    assert _as_pairs(spec) == [
        (np.flatnonzero(mask).tolist(), np.flatnonzero(~mask).tolist()),
        (np.flatnonzero(~mask).tolist(), np.flatnonzero(mask).tolist()),
    ]
    exhausted = KFold(3).split(X)
    list(exhausted)
    with pytest.raises(ValueError, match=r"No fits were performed\. Was the CV iterator empty"):
        cv_spec(exhausted, X, y, None, classifier=True)


def test_data_from_pandas_and_lists() -> None:
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    labels = pd.Series(np.where(y == 1, "yes", "no"))
    data = as_data(frame, labels, groups=[str(i % 3) for i in range(len(X))])
    assert data.X.dtype == np.float64 and data.X.shape == X.shape
    assert data.feature_names is not None and data.feature_names.tolist() == ["a", "b", "c", "d"]
    assert data.y.dtype.kind == "U" and data.object_labels
    assert data.groups is not None and data.groups.dtype.kind == "U"
    listed = as_data(X.tolist(), y.tolist())
    assert listed.feature_names is None and listed.y.dtype == np.int64 and not listed.object_labels
    with np.load(io.BytesIO(data.npz()), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["X", "groups", "y"]
        np.testing.assert_array_equal(npz["y"], data.y)
    assert as_data(pd.DataFrame(X), y).feature_names is None  # integer column names: none, as scikit-learn


@pytest.mark.parametrize(
    ("X_", "y_", "exc", "match"),
    [
        (X[:30], y, ValueError, "inconsistent numbers of samples"),
        (X[:, 0], y, NotSendableError, "Expected a 2D array"),
        (scipy.sparse.csr_matrix(X), y, NotSendableError, "sparse"),
        (np.array([["a"] * 4] * 40), y, NotSendableError, "numeric"),
        (X, None, NotSendableError, "y is required"),
        (X, np.c_[y, y], NotSendableError, "1-D"),
    ],
)
def test_data_that_cannot_be_sent(X_: Any, y_: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        as_data(X_, y_)


# ---------------------------------------------------------------------------------------------
# fit refuses before its first request
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "fit_kwargs", "match"),
    [
        (FanoutSearchCV(UserSVC(), {"C": [1]}), {}, "is not a scikit-learn class"),
        (FanoutSearchCV(SVC(), {"C": [lambda: 1]}), {}, r"Parameter grid for parameter 'C'.*lambda"),
        (FanoutSearchCV(SVC(), {"C": [1]}, scoring=make_scorer(accuracy_score)), {}, "scoring"),
        (FanoutSearchCV(SVC(), {"C": [1]}, refit=lambda r: 0), {}, "refit as a callable"),
        (FanoutSearchCV(SVC(), {"C": [1]}, error_score="ignore"), {}, "error_score"),
        (FanoutSearchCV(SVC(), {"C": [1]}), {"sample_weight": np.ones(40)}, r"fit parameters \(sample_weight\)"),
        (FanoutSearchCV(SVC(), {"C": [1]}, scoring="not-a-scorer"), {}, "The 'scoring' parameter"),
        (
            FanoutSearchCV(SVC(), {"C": [1]}, scoring=["accuracy", "f1"], refit=True),
            {},
            "For multi-metric scoring, the parameter refit must be set to a scorer key",
        ),
        (FanoutSearchCV(SVC(), {"C": [1]}, cv=GroupKFold(3)), {}, "The 'groups' parameter should not be None"),
        (FanoutRandomizedSearchCV(SVC(), {"C": scipy.stats.norm}), {}, "scipy.stats' own distributions, frozen"),
        (FanoutRandomizedSearchCV(SVC(), {"C": 1}), {}, "not iterable or a distribution"),
        (FanoutRandomizedSearchCV(SVC(), {"C": [1]}, n_iter=0), {}, "'n_iter' parameter"),
        (FanoutRandomizedSearchCV(SVC(), {"C": [1]}, random_state="seed"), {}, "random_state='seed'"),
    ],
)
def test_fit_refuses_what_cannot_be_sent_before_any_request(
    search: Any, fit_kwargs: dict[str, Any], match: str, no_request: None
) -> None:
    search.set_params(url=UNROUTABLE, token="unused")
    with pytest.raises((ValueError, TypeError), match=match) as info:
        search.fit(X, y, **fit_kwargs)
    assert not isinstance(info.value, (ConnectionError, AssertionError))


def test_fit_needs_a_url_and_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FANOUT_URL", raising=False)
    monkeypatch.delenv("FANOUT_TOKEN", raising=False)
    with pytest.raises(ValueError, match="FANOUT_URL"):
        FanoutSearchCV(SVC(), {"C": [1]}).fit(X, y)
    monkeypatch.setenv("FANOUT_URL", UNROUTABLE)
    with pytest.raises(ValueError, match="FANOUT_TOKEN"):
        FanoutSearchCV(SVC(), {"C": [1]}).fit(X, y)


def test_the_search_objects_are_scikit_learn_estimators() -> None:
    search = FanoutSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [1, 2]}, cv=3, name="x")
    copied = clone(search)
    assert copied.get_params()["estimator__svc__C"] == 1.0 and copied.get_params()["name"] == "x"
    assert set(FanoutSearchCV(SVC(), {}).get_params(deep=False)) == {
        "estimator", "param_grid", "scoring", "refit", "cv", "return_train_score", "error_score", "url", "token",
        "name", "wait",
    }  # fmt: skip
    assert set(FanoutRandomizedSearchCV(SVC(), {}).get_params(deep=False)) >= {"n_iter", "random_state"}
    from sklearn.base import is_classifier

    assert is_classifier(search)
    assert hasattr(search, "predict") and not hasattr(search, "transform")
    assert not hasattr(search, "classes_") and not hasattr(search, "n_features_in_")


def test_a_refused_spec_names_the_users_step_names() -> None:
    two = estimator_spec(Pipeline([("scale", StandardScaler()), ("clf", SVC())]))
    error = in_user_terms(FanoutSpecError(400, "svc__C: must be > 0", "param_grid[1].svc__C"), two)
    assert (error.field, error.detail, error.status) == ("param_grid[1].clf__C", "clf__C: must be > 0", 400)
    one = estimator_spec(Pipeline([("clf", SVC())]))
    assert in_user_terms(FanoutSpecError(400, "bad", "params.C"), one).field == "params.clf__C"
    assert in_user_terms(FanoutSpecError(400, "bad", "cv.n_splits"), one).field == "cv.n_splits"

"""The client's `cv_results_`, offline: scikit-learn's own `cv_results_`, written in the server's JSON layout
(search.engine.aggregate.cv_results: lists, null for NaN, params as JSON, `param_<name>` columns sorted by
name), rebuilt by the client equal to scikit-learn's in every key, dtype, mask and value; then `fit`, `attach`
and `refresh` end to end against a fake server (an httpx MockTransport answering as docs/api.md says, with
scikit-learn's own search behind it)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import math
import re
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]  # no stubs installed
import pytest
import scipy.stats
import skops.io  # type: ignore[import-untyped]  # skops ships no type information
from fanout_client import FanoutError, FanoutRandomizedSearchCV, FanoutSearchCV, FanoutSpecError, _http
from fanout_client import search as search_module
from fanout_client._results import best_index, cv_results, masked_params, match_rows, user_params
from fanout_client._values import json_value
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, RandomizedSearchCV
from sklearn.model_selection._search import _yield_masked_array_for_each_param
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

X, y = make_classification(n_samples=60, n_features=5, n_informative=3, random_state=0)
FAILING_GRID = [{"penalty": ["l2"], "C": [0.1, 1.0]}, {"penalty": ["l1"], "C": [1.0]}]  # l1 fails with dual=True


def plain(value: Any) -> Any:
    """A value as JSON holds it (numpy → Python, tuples → lists, NaN → null)."""
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    return value


def server_json(results: dict[str, Any], rename: dict[str, str] | None = None) -> dict[str, list[Any]]:
    """scikit-learn's cv_results_ in the server's layout: the timings, `param_<name>` sorted by name (null where
    a candidate lacks it), `params`, then the scores as they come; through a JSON round trip."""
    rename = rename or {}

    def key(k: str) -> str:
        step, sep, rest = k.partition("__")
        return f"{rename[step]}__{rest}" if sep and step in rename else k

    params = [{key(k): plain(v) for k, v in p.items()} for p in results["params"]]
    out: dict[str, list[Any]] = {}
    for k, values in results.items():
        if k == "params" or k.startswith("param_"):
            if "params" not in out:
                for name in sorted({n for p in params for n in p}):
                    out[f"param_{name}"] = [p.get(name) for p in params]
                out["params"] = params
            continue
        out[k] = [plain(v) for v in values]
    loaded: dict[str, list[Any]] = json.loads(json.dumps(out, allow_nan=False))
    return loaded


def assert_same(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert list(ours) == list(theirs)
    assert ours["params"] == theirs["params"]
    for k, expected in theirs.items():
        if k == "params":
            continue
        got = ours[k]
        assert type(got) is type(expected), k
        assert got.dtype == expected.dtype, (k, got.dtype, expected.dtype)
        if isinstance(expected, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(expected)
            assert_array_equal(np.ma.getmaskarray(got), mask, err_msg=k)
            assert_array_equal(got.data[~mask], expected.data[~mask], err_msg=k)
            assert [type(v) for v in got.data[~mask]] == [type(v) for v in expected.data[~mask]], k
        else:
            assert_array_equal(got, expected, err_msg=k, strict=True)


GRIDS = [
    pytest.param(SVC(), [{"kernel": ["rbf"], "C": [1, 10], "gamma": [0.1, 1.0]},
                         {"kernel": ["poly"], "degree": [1, 2]}], {"return_train_score": True}, id="masked"),
    pytest.param(DecisionTreeClassifier(random_state=0), {"max_depth": [None, 2], "criterion": ["gini", "entropy"]},
                 {"scoring": ["accuracy", "f1"], "refit": "f1"}, id="multimetric-none"),
    pytest.param(LogisticRegression(), {"C": np.logspace(-2, 2, 3), "fit_intercept": [True, False]},
                 {"scoring": "roc_auc"}, id="array-bool"),
    pytest.param(MLPClassifier(max_iter=5, random_state=0), {"hidden_layer_sizes": [(3,), (2, 2)]}, {},
                 id="tuples"),
    pytest.param(MLPClassifier(max_iter=5, random_state=0), {"hidden_layer_sizes": [(3,), (4,)]}, {},
                 id="same-length-tuples"),
    pytest.param(LinearSVC(dual=True), FAILING_GRID, {"refit": False}, id="failed-fits"),
]  # fmt: skip


def fitted(estimator: Any, grid: Any, kwargs: dict[str, Any]) -> GridSearchCV:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GridSearchCV(estimator, grid, cv=3, **kwargs).fit(X, y)


@pytest.mark.parametrize(("estimator", "grid", "kwargs"), GRIDS)
def test_cv_results_rebuilt_from_the_servers_json_equal_scikit_learns(estimator: Any, grid: Any, kwargs: Any) -> None:
    theirs = fitted(estimator, grid, kwargs).cv_results_
    raw = server_json(theirs)
    local = list(ParameterGrid(grid))
    order, params = user_params(raw["params"], local, str, str, json_value)
    assert order == list(range(len(local)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-finite warning, tested below
        ours = cv_results(raw, params)
    assert_same(ours, theirs)


@pytest.mark.parametrize(("estimator", "grid", "kwargs"), [g for g in GRIDS if g.id != "tuples"])
def test_without_the_local_candidates_the_json_values_give_the_same_dtypes(
    estimator: Any, grid: Any, kwargs: Any
) -> None:
    """As after `attach`: only the server's JSON (tuples arrive as lists; every other value as it was)."""
    theirs = fitted(estimator, grid, kwargs).cv_results_
    raw = server_json(theirs)
    _, params = user_params(raw["params"], None, str, str, json_value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = cv_results(raw, params)
    assert list(ours) == list(theirs)
    for k, expected in theirs.items():
        if k.startswith("param_"):
            assert ours[k].dtype == expected.dtype, k
            assert_array_equal(np.ma.getmaskarray(ours[k]), np.ma.getmaskarray(expected), err_msg=k)


def test_the_masked_parameter_arrays_are_scikit_learns() -> None:
    examples: list[list[dict[str, Any]]] = [
        [{"a": 1, "b": "x"}, {"a": 2}, {"c": None}],
        [{"a": [1]}, {"a": [2, 3]}],
        [{"a": 1.5}, {"a": 2}],
        [{"a": True}, {"b": (1, 2)}],
    ]
    for candidates in examples:
        ours, theirs = list(masked_params(candidates)), list(_yield_masked_array_for_each_param(candidates))
        assert [k for k, _ in ours] == [k for k, _ in theirs]
        for (_, got), (_, expected) in zip(ours, theirs, strict=True):
            assert got.dtype == expected.dtype
            assert_array_equal(got.mask, expected.mask)
            assert_array_equal(got.compressed(), expected.compressed())


def test_failed_fits_warn_as_scikit_learn_warns_non_finite_scores() -> None:
    theirs = fitted(LinearSVC(dual=True), FAILING_GRID, {"refit": False}).cv_results_
    raw = server_json(theirs)
    assert raw["split0_test_score"][2] is None
    with pytest.warns(UserWarning, match="One or more of the test scores are non-finite"):
        ours = cv_results(raw, raw["params"])
    assert np.isnan(ours["mean_test_score"][2]) and ours["rank_test_score"][2] == 3


@pytest.mark.parametrize("error_score", [0.0, -1.5])
def test_a_numeric_error_score_replaces_the_nan_of_failed_fits(error_score: float) -> None:
    """The server always scores a failed fit NaN; the client gives GridSearchCV(error_score=…)'s numbers."""
    theirs = fitted(LinearSVC(dual=True), FAILING_GRID, {"refit": False, "error_score": error_score,
                                                         "return_train_score": True}).cv_results_  # fmt: skip
    nan_run = fitted(LinearSVC(dual=True), FAILING_GRID, {"refit": False, "return_train_score": True}).cv_results_
    raw = server_json(nan_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no non-finite warning: the scores are finite now
        ours = cv_results(raw, list(ParameterGrid(FAILING_GRID)),
                          error_score)  # fmt: skip
    for k in [k for k in theirs if k.endswith("_time")]:
        ours[k] = theirs[k]  # measured: differ between the two runs
    assert_same(ours, theirs)


def test_rows_come_back_in_the_users_order_when_step_names_reorder_the_grid() -> None:
    """The server's grid is sorted by its names (standardscaler < svc), the user's by theirs (clf < scale)."""
    user = Pipeline([("scale", StandardScaler()), ("clf", SVC())])
    grid = {"clf__C": [1.0, 10.0], "scale__with_mean": [True, False]}
    theirs = fitted(user, grid, {}).cv_results_
    server = fitted(make_pipeline(StandardScaler(), SVC()), {"svc__C": [1.0, 10.0],
                    "standardscaler__with_mean": [True, False]}, {}).cv_results_  # fmt: skip
    raw = server_json(server)
    rename = {"scale": "standardscaler", "clf": "svc"}
    back = {v: k for k, v in rename.items()}

    def to_server(k: str) -> str:
        step, _, rest = k.partition("__")
        return f"{rename[step]}__{rest}"

    def to_user(k: str) -> str:
        step, _, rest = k.partition("__")
        return f"{back[step]}__{rest}"

    local = list(ParameterGrid(grid))
    order, params = user_params(raw["params"], local, to_server, to_user, json_value)
    assert order != list(range(4))
    ours = cv_results({k: [v[i] for i in order] for k, v in raw.items()}, params)
    for k in [k for k in theirs if k.endswith("_time")]:
        ours[k] = theirs[k]
    assert_same(ours, theirs)
    # Without the local candidates: the server's order, the user's keys, sorted as ParameterGrid sorts them.
    order, params = user_params(raw["params"], None, to_server, to_user, json_value)
    assert order == [0, 1, 2, 3] and list(params[0]) == ["clf__C", "scale__with_mean"]


def test_matching_rows_pairs_duplicates_in_order_and_refuses_other_candidates() -> None:
    assert match_rows([{"a": 1}, {"a": 2}, {"a": 1}], [{"a": 1}, {"a": 1}, {"a": 2}]) == [0, 2, 1]
    assert match_rows([{"a": 1}], [{"a": 2}]) is None
    assert match_rows([{"a": 1}], [{"a": 1}, {"a": 1}]) is None
    assert match_rows([{"a": 1.0}], [{"a": 1}]) is None  # 1.0 and 1 are other JSON values


def test_best_index_is_scikit_learns_but_the_servers_among_ties() -> None:
    results = {"rank_test_score": np.array([2, 1, 1, 3], dtype=np.int32)}
    assert best_index(results, "score", None) == 1
    assert best_index(results, "score", 2) == 2  # a tie: the candidate the server refitted
    assert best_index(results, "score", 0) == 1  # not a tie: scikit-learn's


# ---------------------------------------------------------------------------------------------
# A fake server: the API's answers (docs/api.md), with scikit-learn's own search behind them
# ---------------------------------------------------------------------------------------------


class FakeServer:
    """Answers /api/v1/... like Fanout: data sets from `.npz` uploads, searches run at once by GridSearchCV or
    RandomizedSearchCV (with make_pipeline's step names, as the server builds them)."""

    REGISTRY = [
        {"name": n, "kind": k, "module": m}
        for n, k, m in [("SVC", "classifier", "sklearn.svm"), ("LinearSVC", "classifier", "sklearn.svm"),
                        ("LogisticRegression", "classifier", "sklearn.linear_model"),
                        ("DecisionTreeClassifier", "classifier", "sklearn.tree"),
                        ("StandardScaler", "transformer", "sklearn.preprocessing")]
    ]  # fmt: skip

    def __init__(self) -> None:
        self.datasets: dict[int, dict[str, np.ndarray]] = {}
        self.searches: dict[int, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.running: set[int] = set()  # searches that answer "running" until released

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer secret"
        path = request.url.path.removeprefix("/api/v1")
        self.requests.append(f"{request.method} {path}")
        if path == "/estimators":
            return httpx.Response(200, json=self.REGISTRY)
        if path == "/datasets":
            return self.upload(request)
        if path == "/searches":
            return self.create(json.loads(request.content))
        m = re.fullmatch(r"/searches/(\d+)(/cv_results|/model\.skops|/cancel|/failures)?", path)
        if m is None or int(m.group(1)) not in self.searches:
            return httpx.Response(404, json={"detail": "not found", "field": None})
        search = self.searches[int(m.group(1))]
        if m.group(2) == "/cv_results":
            return httpx.Response(200, json={"search": search["export"], "cv_results": search["cv_results"]})
        if m.group(2) == "/failures":
            failed = search["n_fits_failed"]
            return httpx.Response(200, json=[{"message": "ValueError: l1", "count": failed}] if failed else [])
        if m.group(2) == "/model.skops":
            return httpx.Response(200, content=skops.io.dumps(search["model"]))
        return httpx.Response(200, json=self.detail(search))

    def upload(self, request: httpx.Request) -> httpx.Response:
        head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        payload = parts["file"].get_payload(decode=True)
        assert isinstance(payload, bytes)
        assert re.fullmatch(r"fanout-[0-9a-f]{8}\.npz", str(parts["file"].get_filename()))
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        pk = len(self.datasets) + 1
        self.datasets[pk] = arrays
        return httpx.Response(201, json={"id": pk, "name": "x.npz", "kind": "npz", "created": True})

    def create(self, spec: dict[str, Any]) -> httpx.Response:
        from sklearn.svm import LinearSVC as Refused

        data = self.datasets[spec["dataset"]["id"]]
        classes = {e["name"]: getattr(__import__(e["module"], fromlist=["_"]), e["name"]) for e in self.REGISTRY}
        names = spec["estimator"] if isinstance(spec["estimator"], list) else [spec["estimator"]]
        steps = [classes[n]() for n in names]
        estimator = steps[0] if len(steps) == 1 else make_pipeline(*steps)
        estimator.set_params(**spec["params"])
        if isinstance(estimator, Refused) and spec.get("param_grid") == [{"C": [0]}]:
            return httpx.Response(400, json={"detail": "C must be > 0", "field": "param_grid.C"})
        cv = spec["cv"]
        cv = cv["n_splits"] if "n_splits" in cv else [(np.array(a), np.array(b)) for a, b in cv["splits"]]
        common = {"scoring": spec["scoring"], "refit": spec["refit"], "cv": cv,
                  "return_train_score": spec["return_train_score"]}  # fmt: skip
        if spec.get("strategy") == "random":
            dists = [{k: getattr(scipy.stats, v["distribution"])(*v["args"], **v["kwargs"]) if isinstance(v, dict)
                      else v for k, v in d.items()} for d in spec["param_distributions"]]  # fmt: skip
            search: Any = RandomizedSearchCV(estimator, dists, n_iter=spec["n_iter"],
                                             random_state=spec["random_state"], **common)  # fmt: skip
        else:
            search = GridSearchCV(estimator, spec["param_grid"], **common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(data["X"], data["y"])
        pk = len(self.searches) + 1
        metric = spec["scoring"][0] if isinstance(spec["scoring"], list) else "score"
        failed = sum(
            int(np.isnan(search.cv_results_[f"split{k}_test_{metric}"]).sum()) for k in range(search.n_splits_)
        )
        best = getattr(search, "best_index_", None)
        row = {
            "id": pk, "name": spec["name"], "status": "done", "n_fits": len(search.cv_results_["params"]) *
            search.n_splits_, "n_fits_failed": failed, "n_splits": search.n_splits_, "refit_error": None,
            "best_index": int(best) if best is not None else None, "refit_time": getattr(search, "refit_time_", None),
            "url": f"http://testserver/searches/{pk}/", "error": "",
        }  # fmt: skip
        self.searches[pk] = {
            **row, "spec": spec, "model": getattr(search, "best_estimator_", None),
            "cv_results": server_json(search.cv_results_), "export": {**row, "spec": spec},
        }  # fmt: skip
        return httpx.Response(201, json=self.detail(self.searches[pk]))

    def detail(self, search: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in search.items() if k not in ("spec", "model", "cv_results", "export")}
        running = search["id"] in self.running
        out["status"] = "running" if running else search["status"]
        out["progress"] = {"finished": not running, "refitting": False, "done": 0 if running else out["n_fits"],
                           "total": out["n_fits"], "status": out["status"]}  # fmt: skip
        return out


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    fake = FakeServer()
    transport = httpx.MockTransport(fake)

    def session(url: str, token: str) -> _http.Session:
        return _http.Session(url, token, transport=transport, retries=0)

    monkeypatch.setattr(search_module, "Session", session)
    monkeypatch.setenv("FANOUT_URL", "http://testserver")
    monkeypatch.setenv("FANOUT_TOKEN", "secret")
    yield fake


def _without_times(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items() if not k.endswith("_time")}


def assert_same_search(ours: Any, theirs: Any) -> None:
    assert_same(_without_times(ours.cv_results_), _without_times(theirs.cv_results_))
    for name in ("best_index_", "best_params_", "best_score_", "n_splits_", "multimetric_"):
        assert hasattr(ours, name) == hasattr(theirs, name), name
        if hasattr(theirs, name):
            assert getattr(ours, name) == getattr(theirs, name), name
    assert hasattr(ours, "best_estimator_") == hasattr(theirs, "best_estimator_")
    if hasattr(theirs, "best_estimator_"):
        assert repr(ours.best_estimator_) == repr(theirs.best_estimator_)
        assert_array_equal(ours.predict(X), theirs.predict(X), strict=True)
        assert ours.score(X, y) == theirs.score(X, y)


def test_fit_a_pipeline_with_its_own_step_names(server: FakeServer) -> None:
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SVC(C=2.0))])
    grid = {"clf__gamma": [0.1, 1.0], "scale__with_mean": [True, False]}
    kwargs: dict[str, Any] = {"cv": KFold(3, shuffle=True, random_state=0), "scoring": ["accuracy", "f1"],
                              "refit": "f1", "return_train_score": True}  # fmt: skip
    ours = FanoutSearchCV(pipe, grid, **kwargs).fit(X, y)
    theirs = GridSearchCV(pipe, grid, **kwargs).fit(X, y)
    assert_same_search(ours, theirs)
    assert list(ours.best_estimator_.named_steps) == ["scale", "clf"]
    assert ours.search_id_ == 1 and ours.search_url_ == "http://testserver/searches/1/"
    assert sorted(ours.scorer_) == ["accuracy", "f1"]
    assert server.requests == ["GET /estimators", "POST /datasets", "POST /searches", "GET /searches/1/cv_results",
                               "GET /searches/1/model.skops"]  # fmt: skip
    spec = server.searches[1]["spec"]
    assert spec["estimator"] == ["StandardScaler", "SVC"] and spec["params"] == {"svc__C": 2.0}
    assert spec["param_grid"] == [{"svc__gamma": [0.1, 1.0], "standardscaler__with_mean": [True, False]}]
    assert spec["cv"]["splits"][0][1] == next(KFold(3, shuffle=True, random_state=0).split(X))[1].tolist()
    assert spec["refit"] == "f1" and spec["name"].startswith("FanoutSearchCV(Pipeline(")


def test_fit_a_pipeline_of_one_step(server: FakeServer) -> None:
    pipe = Pipeline([("clf", SVC())])
    grid = {"clf__C": [0.5, 2.0]}
    ours = FanoutSearchCV(pipe, grid, cv=3).fit(X, y)
    assert_same_search(ours, GridSearchCV(pipe, grid, cv=3).fit(X, y))
    assert server.searches[1]["spec"]["estimator"] == "SVC"
    assert server.searches[1]["spec"]["param_grid"] == [{"C": [0.5, 2.0]}]


def test_fit_a_random_search_with_distributions_and_pandas(server: FakeServer) -> None:
    iris = load_iris(as_frame=True)
    labels = pd.Series(np.asarray(iris.target_names)[iris.target])
    dists = {"C": scipy.stats.loguniform(1e-2, 1e2), "kernel": ["rbf", "linear"]}
    ours = FanoutRandomizedSearchCV(SVC(), dists, n_iter=4, random_state=0, cv=3).fit(iris.data, labels)
    theirs = RandomizedSearchCV(SVC(), dists, n_iter=4, random_state=0, cv=3).fit(iris.data, labels)
    assert_same(_without_times(ours.cv_results_), _without_times(theirs.cv_results_))
    assert ours.best_params_ == theirs.best_params_
    assert repr(ours.best_estimator_) == repr(theirs.best_estimator_)  # C=np.float64(…), as scikit-learn's
    assert_array_equal(ours.classes_, theirs.classes_, strict=True)
    assert_array_equal(ours.predict(iris.data), theirs.predict(iris.data), strict=True)
    assert_array_equal(ours.feature_names_in_, theirs.feature_names_in_)
    assert server.searches[1]["spec"]["param_distributions"][0]["C"] == {
        "distribution": "loguniform", "args": [0.01, 100.0], "kwargs": {}
    }  # fmt: skip


def test_refit_false_and_failed_fits_with_a_numeric_error_score(server: FakeServer) -> None:
    kwargs: dict[str, Any] = {"cv": 3, "refit": False, "error_score": 0.0}
    with pytest.warns(
        FitFailedWarning,
        match=r"(?s)3 fits failed out of a total of 9.+set to 0\.0.+3 fits failed with the following error:\nValue",
    ):
        ours = FanoutSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GridSearchCV(LinearSVC(dual=True), FAILING_GRID, **kwargs).fit(X, y)
    assert_same_search(ours, theirs)
    with pytest.raises(AttributeError, match="has no attribute 'predict'") as info:
        ours.predict(X)
    assert "initialized with `refit=False`. predict is available only after refitting" in str(info.value.__cause__)
    with pytest.raises(AttributeError, match=r"initialized with `refit=False`\. score is available only"):
        ours.score(X, y)


def test_error_score_raise_raises_after_the_search(server: FakeServer) -> None:
    search = FanoutSearchCV(LinearSVC(dual=True), FAILING_GRID, cv=3, refit=False, error_score="raise")
    with pytest.raises(
        ValueError, match=r"^ValueError: l1\n\n3 of the 9 fits of Fanout search 1 failed and error_score='raise'"
    ):
        search.fit(X, y)


def test_a_refused_spec_is_a_value_error_naming_the_field(server: FakeServer) -> None:
    with pytest.raises(FanoutSpecError, match=r"param_grid\.C: C must be > 0") as info:
        FanoutSearchCV(LinearSVC(), {"C": [0]}, cv=3).fit(X, y)
    assert isinstance(info.value, ValueError) and info.value.status == 400 and info.value.field == "param_grid.C"


def test_wait_false_then_refresh_and_attach(server: FakeServer) -> None:
    server.running.add(1)
    tree = DecisionTreeClassifier(random_state=0)
    search = FanoutSearchCV(tree, {"max_depth": [1, 2, 3]}, cv=3, wait=False).fit(X, y)
    assert search.search_id_ == 1 and not hasattr(search, "cv_results_")
    with pytest.raises(NotFittedError):
        search.predict(X)
    search.refresh(wait=False)  # still running: nothing loaded
    assert not hasattr(search, "cv_results_")
    with pytest.raises(ValueError, match="not over yet"):
        FanoutSearchCV.attach(1, wait=False)
    server.running.clear()
    theirs = GridSearchCV(tree, {"max_depth": [1, 2, 3]}, cv=3).fit(X, y)
    assert_same_search(search.refresh(), theirs)
    attached = FanoutSearchCV.attach(1)
    assert type(attached) is FanoutSearchCV and attached.search_url_ == search.search_url_
    assert_same_search(attached, theirs)
    assert attached.get_params()["param_grid"] == {"max_depth": [1, 2, 3]} and attached.cv == 3
    with pytest.raises(FanoutError) as info:
        FanoutSearchCV.attach(99)
    assert info.value.status == 404


def test_attach_a_random_search_gives_a_randomized_search(server: FakeServer) -> None:
    dists = {"C": scipy.stats.uniform(0.5, 2), "kernel": ["rbf", "linear"]}
    fitted_search = FanoutRandomizedSearchCV(SVC(), dists, n_iter=3, random_state=5, cv=3).fit(X, y)
    attached = FanoutSearchCV.attach(fitted_search.search_id_)
    assert type(attached) is FanoutRandomizedSearchCV and attached.random_state == 5 and attached.n_iter == 3
    assert_same(_without_times(attached.cv_results_), _without_times(fitted_search.cv_results_))
    assert clone(attached).get_params()["param_distributions"]["C"].kwds == {}


def test_a_model_with_untrusted_types_is_not_loaded(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skops.io, "get_untrusted_types", lambda data: ["os.system"])
    with pytest.raises(ValueError, match=r"not scikit-learn, numpy or scipy classes.*os\.system"):
        FanoutSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=3).fit(X, y)

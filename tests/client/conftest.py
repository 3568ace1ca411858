"""The notebook client against the real thing: pytest-django's `live_server` (the API at /api/v1/, in a thread
of this process), a real `manage.py fanoutcluster` child on the same test database, and an API token.

Starting the cluster takes seconds, so it lives for one test module (`cluster`); the database is flushed
after every transactional test, so the user and the token are made again for each test (`fanout`), and
every search a test started must be over before the flush (`fanout` waits for that, and fails the test if
one is left running). The oracle helpers (`assert_same_search`, `assert_same_cv_results`) compare a
Fanout search with scikit-learn's own search on the same data.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from numpy.testing import assert_array_equal

from project.cluster import ROOT, start_qcluster, stop_qcluster
from search.models import Dataset, Search, Status
from search.services.searches import search_cancel
from search.services.tokens import token_create
from tests.conftest import project_env

CLIENT_SRC = ROOT / "client"
if importlib.util.find_spec("fanout_client") is None and CLIENT_SRC.is_dir():  # not installed: its source folder
    sys.path.insert(0, str(CLIENT_SRC))

SETTLE_SECONDS = 120  # a test's searches must be over by then, or the flush would pull rows from under the cluster
TIMING_SUFFIX = "_time"  # mean_fit_time, std_fit_time, mean_score_time, std_score_time: measured, not reproduced


@dataclass(frozen=True)
class Fanout:
    """Where the client talks to, as whom; `env` is for a child Python process (a "notebook")."""

    url: str
    token: str
    user: User
    env: dict[str, str]


@pytest.fixture(scope="module")
def cluster(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    """One real cluster for a whole module, on this test run's database (created by `django_db_setup`)."""
    log = tmp_path_factory.mktemp("qcluster") / "qcluster.log"
    proc = start_qcluster(project_env(DJANGO_ALLOW_ASYNC_UNSAFE=""), log)
    try:
        yield proc
    finally:
        stop_qcluster(proc)


def _settle(user: User) -> list[int]:
    """Wait until no search of `user` is queued or running; cancel (and return) those still active after
    SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while Search.objects.filter(owner=user, status__in=Status.ACTIVE).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = list(Search.objects.filter(owner=user, status__in=Status.ACTIVE))
    for search in left:
        search_cancel(search=search)
    if left:
        time.sleep(5)  # a running unit sees the cancel at its next heartbeat and stops its runner
    return [s.pk for s in left]


@pytest.fixture
def fanout(
    transactional_db: None,
    live_server: Any,
    cluster: subprocess.Popen[bytes],
    django_user_model: type[User],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Fanout]:
    """A user with an API token, FANOUT_URL and FANOUT_TOKEN set for the client, and the cluster running."""
    assert cluster.poll() is None, f"the module's qcluster exited with {cluster.returncode}"
    user = django_user_model.objects.create_user("notebook", password="a-long-notebook-password")
    _, token = token_create(user=user, name="client tests")
    url = str(live_server.url)
    monkeypatch.setenv("FANOUT_URL", url)
    monkeypatch.setenv("FANOUT_TOKEN", token)
    env = dict(os.environ, FANOUT_URL=url, FANOUT_TOKEN=token)
    if CLIENT_SRC.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CLIENT_SRC), str(ROOT), env.get("PYTHONPATH")) if p)
    yield Fanout(url=url, token=token, user=user, env=env)
    left = _settle(user)
    assert not left, f"searches {left} were still running {SETTLE_SECONDS} s after the test; cancelled"


def stored() -> tuple[int, int]:
    """How many uploaded data sets and searches there are (a refusal before the upload changes neither)."""
    return Dataset.objects.exclude(owner=None).count(), Search.objects.count()


def nothing_uploaded() -> bool:
    """No data set and no search were stored (a refusal happened before the upload)."""
    return stored() == (0, 0)


def run_python(script: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[str]:
    """A child Python process running `script` (a "notebook"), with its output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# ---------------------------------------------------------------------------------------------
# The oracle: a Fanout search against scikit-learn's own search on the same data
# ---------------------------------------------------------------------------------------------


def assert_same_cv_results(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Every key of scikit-learn's `cv_results_` and no other; every value exactly equal (dtype included, NaN
    where scikit-learn has NaN), masked parameter columns with the same mask and the same unmasked values
    (scikit-learn leaves masked places uninitialised); the timings only in shape, dtype and sign."""
    assert sorted(ours) == sorted(theirs)
    assert ours["params"] == theirs["params"]
    n = len(theirs["params"])
    for key, expected in theirs.items():
        if key == "params":
            continue
        got = ours[key]
        assert isinstance(got, np.ndarray), (key, type(got))
        assert got.shape == expected.shape == (n,), key
        assert got.dtype == expected.dtype, (key, got.dtype, expected.dtype)
        if key.startswith("param_"):
            assert isinstance(got, np.ma.MaskedArray), key
            mask = np.ma.getmaskarray(expected)
            assert_array_equal(np.ma.getmaskarray(got), mask, err_msg=key)
            assert_array_equal(got.data[~mask], expected.data[~mask], err_msg=key)
            continue
        assert not isinstance(got, np.ma.MaskedArray), key
        if key.endswith(TIMING_SUFFIX):
            assert np.all(np.isfinite(got)) and np.all(got >= 0), (key, got)
        else:  # scores, means, stds and ranks: bit for bit
            assert_array_equal(got, expected, err_msg=key, strict=True)


def _same_number(a: Any, b: Any) -> bool:
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _plain_params(estimator: Any) -> dict[str, Any]:
    """Every parameter of an estimator and its steps (deep), each step as its class name; NaN as a string (NaN is
    not equal to itself)."""

    def plain(value: Any) -> Any:
        if hasattr(value, "get_params"):
            return type(value).__name__
        if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return [(name, type(step).__name__) for name, step in value]  # Pipeline.steps
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return value

    return {key: plain(value) for key, value in estimator.get_params(deep=True).items()}


def assert_same_search(ours: Any, theirs: Any, X: Any, y: Any = None) -> None:
    """The fitted attributes of a scikit-learn search, and the refitted model's answers on `X`."""
    assert_same_cv_results(ours.cv_results_, theirs.cv_results_)
    assert ours.n_splits_ == theirs.n_splits_
    assert ours.multimetric_ == theirs.multimetric_
    if theirs.multimetric_:
        assert sorted(ours.scorer_) == sorted(theirs.scorer_)
    for name in ("best_index_", "best_params_", "best_score_", "best_estimator_", "refit_time_", "classes_"):
        assert hasattr(ours, name) == hasattr(theirs, name), name
    if hasattr(theirs, "best_index_"):
        assert ours.best_index_ == theirs.best_index_
        assert ours.best_params_ == theirs.best_params_
    if hasattr(theirs, "best_score_"):
        assert _same_number(ours.best_score_, theirs.best_score_), (ours.best_score_, theirs.best_score_)
    if not hasattr(theirs, "best_estimator_"):
        return
    assert isinstance(ours.refit_time_, float) and ours.refit_time_ >= 0
    assert type(ours.best_estimator_) is type(theirs.best_estimator_)
    assert _plain_params(ours.best_estimator_) == _plain_params(theirs.best_estimator_)
    assert ours.n_features_in_ == theirs.n_features_in_
    if hasattr(theirs, "classes_"):
        assert_array_equal(ours.classes_, theirs.classes_, strict=True)
    assert_array_equal(ours.best_estimator_.predict(X), theirs.best_estimator_.predict(X), strict=True)
    assert_array_equal(ours.predict(X), theirs.predict(X), strict=True)
    for method in ("predict_proba", "decision_function", "transform"):
        if hasattr(theirs.best_estimator_, method):
            assert_array_equal(getattr(ours, method)(X), getattr(theirs, method)(X), err_msg=method)
    if y is not None:
        assert ours.score(X, y) == theirs.score(X, y)

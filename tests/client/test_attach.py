"""A search lives on the server, not in the notebook: killing the notebook's process in the middle of `fit`
loses nothing, `wait=False` returns at once, and `FanoutSearchCV.attach(search_id)` rebuilds the fitted
object, from a running search (waiting for it) or a finished one, equal to `GridSearchCV`'s."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import numpy as np
import pytest
from fanout_client import FanoutError, FanoutSearchCV
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from search.models import Search, Status
from search.services.tokens import token_create
from tests.client.conftest import Fanout, assert_same_cv_results, assert_same_search, run_python

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

# About 50 fits of a few tenths of a second each on 2 cores: several seconds of work, so the search is still
# running when the notebook is killed, and the reference GridSearchCV stays cheap.
N_SAMPLES = 3000
GRID = {"C": [0.1, 1.0, 10.0, 100.0, 1000.0], "gamma": [0.01, 0.1]}
CV = 5
STARTED_TIMEOUT = 60


def slow_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=N_SAMPLES, n_features=20, random_state=0)


NOTEBOOK = f"""
from sklearn.datasets import make_classification
from sklearn.svm import SVC
from fanout_client import FanoutSearchCV

X, y = make_classification(n_samples={N_SAMPLES}, n_features=20, random_state=0)
search = FanoutSearchCV(SVC(), {GRID!r}, cv={CV}, name="killed notebook")
search.fit(X, y)  # waits with its progress bar, until the test kills this process
print("fit returned", search.search_id_, flush=True)
"""


def reference() -> Any:
    X, y = slow_data()
    return GridSearchCV(SVC(), GRID, cv=CV, n_jobs=2).fit(X, y)


def wait_for_search(fanout: Fanout, status: str, timeout: float = STARTED_TIMEOUT) -> Search:
    """The user's newest search once it has `status` (queued or running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        search = Search.objects.filter(owner=fanout.user).order_by("-pk").first()
        if search is not None and search.status == status:
            return search
        assert search is None or search.status in Status.ACTIVE, (search.status, search.error)
        time.sleep(0.05)
    raise AssertionError(f"no {status} search of {fanout.user} after {timeout} s")


def test_killing_the_notebook_mid_search_loses_nothing(fanout: Fanout) -> None:
    notebook = run_python(NOTEBOOK, fanout.env)
    try:
        search = wait_for_search(fanout, Status.RUNNING)
    finally:
        notebook.send_signal(signal.SIGKILL)
        out, err = notebook.communicate(timeout=30)
    assert notebook.returncode == -signal.SIGKILL, err
    assert "fit returned" not in out
    search.refresh_from_db()
    assert search.status in Status.ACTIVE, "the search ended before the notebook was killed: make it longer"
    assert search.n_fits_done < search.n_fits == len(GRID["C"]) * len(GRID["gamma"]) * CV

    # A new notebook (here: this process) attaches and waits for the end: nothing was lost.
    attached = FanoutSearchCV.attach(search.pk)
    search.refresh_from_db()
    assert search.status == Status.DONE and search.n_fits_done == search.n_fits and search.n_fits_failed == 0
    assert attached.search_id_ == search.pk
    X, y = slow_data()
    assert_same_search(attached, reference(), X, y)


def test_wait_false_returns_at_once_then_attach_waits(fanout: Fanout) -> None:
    X, y = slow_data()
    started = time.monotonic()
    search = FanoutSearchCV(SVC(), GRID, cv=CV, wait=False).fit(X, y)
    assert search is not None and isinstance(search.search_id_, int)
    row = Search.objects.get(pk=search.search_id_)
    assert row.owner == fanout.user and row.status in Status.ACTIVE, "fit(wait=False) waited for the search"
    assert time.monotonic() - started < 30
    assert not hasattr(search, "cv_results_") and not hasattr(search, "best_estimator_")
    assert str(search.search_id_) in search.search_url_

    attached = FanoutSearchCV.attach(search.search_id_, wait=True)  # still running: waits for the end
    row.refresh_from_db()
    assert row.status == Status.DONE
    theirs = reference()
    assert_same_search(attached, theirs, X, y)
    assert_same_cv_results(FanoutSearchCV.attach(search.search_id_, wait=False).cv_results_, theirs.cv_results_)


def test_attach_of_a_finished_search_equals_the_fitted_object(fanout: Fanout) -> None:
    X, y = make_classification(n_samples=150, n_features=6, random_state=2)
    grid = {"max_depth": [2, 4, None], "criterion": ["gini", "entropy"]}
    fitted = FanoutSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3, return_train_score=True).fit(X, y)
    attached = FanoutSearchCV.attach(fitted.search_id_)
    assert_same_search(attached, fitted, X, y)
    assert attached.search_url_ == fitted.search_url_
    theirs = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3, return_train_score=True).fit(X, y)
    assert_same_search(attached, theirs, X, y)


def test_attach_to_another_users_search_is_a_404(fanout: Fanout, django_user_model: Any) -> None:
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    mine = FanoutSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=2).fit(X, y)
    other = django_user_model.objects.create_user("someone-else", password="another-long-password")
    _, token = token_create(user=other)
    with pytest.raises(FanoutError) as info:
        FanoutSearchCV.attach(mine.search_id_, token=token)
    assert info.value.status == 404
    with pytest.raises(FanoutError) as info:
        FanoutSearchCV.attach(10**9)  # no such search, with the owner's own token
    assert info.value.status == 404


def test_the_notebooks_output_says_where_the_search_is(fanout: Fanout) -> None:
    """`wait=False` in a script: it prints the id and exits; the test attaches afterwards."""
    script = """
import json
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier
from fanout_client import FanoutSearchCV

X, y = make_classification(n_samples=80, n_features=4, random_state=0)
search = FanoutSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]}, cv=2, wait=False).fit(X, y)
print(json.dumps({"id": search.search_id_, "url": search.search_url_}), flush=True)
"""
    notebook = run_python(script, fanout.env)
    out, err = notebook.communicate(timeout=120)
    assert notebook.returncode == 0, err
    printed = json.loads(out.strip().splitlines()[-1])
    attached = FanoutSearchCV.attach(printed["id"])
    assert attached.search_url_ == printed["url"]
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    theirs = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3]}, cv=2).fit(X, y)
    assert_same_search(attached, theirs, X, y)

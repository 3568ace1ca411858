"""A django-q2 worker SIGKILLed mid-unit: nothing is left running, the unit is handed out again, and the
search completes with exactly one result per (candidate, fold) and scikit-learn's scores."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from typing import Any

import joblib
import pytest
from django.core.management import call_command
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

from search.models import Result, Search, Status, WorkUnit
from search.services.reconcile import units_reconcile
from search.services.searches import plan_search, search_create
from tests.services.test_units import alive
from tests.system.test_oracle import assert_same_cv_results

OPTIONS = {"n_samples": 2000, "n_features": 20, "random_state": 0}
GRID = {"n_estimators": [40, 60, 80, 100, 120], "max_depth": [None, 8]}
SPEC = {
    "name": "kill-me",
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": GRID,
    "dataset": {"name": "make_classification", "options": OPTIONS},
    "cv": 5,
}


@pytest.fixture
def qcluster_env() -> dict[str, str]:
    return {"FANOUT_LEASE_SECONDS": "3"}


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_loses_nothing_and_duplicates_nothing(qcluster: Any) -> None:
    search = search_create(plan=plan_search(SPEC))
    wait_for(lambda: Result.objects.filter(search=search).count() >= 8, 120, "the first fits")
    unit = WorkUnit.objects.get(search=search)
    assert unit.worker_pid is not None and unit.runner_pid is not None
    children = [unit.runner_pid, *unit.worker_pids]
    os.kill(unit.worker_pid, signal.SIGKILL)

    wait_for(lambda: not any(alive(p) for p in children), 15, "the runner and its loky workers to exit")
    survivors = dict(Result.objects.filter(search=search).values_list("pk", "finished_at"))
    assert len(survivors) < search.n_fits

    wait_for(lambda: units_reconcile()["requeued"] == 1, 30, "the lease to expire")
    wait_for(lambda: Search.objects.get(pk=search.pk).is_finished, 180, "the search to finish")
    search.refresh_from_db()
    assert search.status == Status.DONE, search.error
    unit.refresh_from_db()
    assert unit.attempt == 2
    assert unit.fits_run == search.n_fits - len(survivors)  # finished fits were not recomputed
    # the second attempt's tasks are the path-reuse chains left: one per (max_depth, fold) with a fit missing
    chains = {
        (c["max_depth"], f)
        for c, f in Result.objects.exclude(pk__in=survivors).values_list("candidate__params", "fold")
    }
    assert unit.processes_used == min(joblib.cpu_count(), len(chains))
    cells = list(Result.objects.filter(search=search).values_list("candidate__index", "fold"))
    assert len(cells) == len(set(cells)) == search.n_fits
    assert dict(Result.objects.filter(pk__in=survivors).values_list("pk", "finished_at")) == survivors

    out = io.StringIO()
    call_command("exportsearch", search.pk, stdout=out)
    X, y = make_classification(**OPTIONS)
    reference = GridSearchCV(RandomForestClassifier(random_state=0), GRID, cv=5, refit=False).fit(X, y)
    assert_same_cv_results(json.loads(out.getvalue())["cv_results"], reference.cv_results_)

"""A django-q2 worker SIGKILLed mid-unit: nothing is left running, the unit is handed out again within the
lease plus a few seconds, with no help from the test, and the search completes with exactly one result per
(candidate, fold) and scikit-learn's scores. The reconciler runs while the cluster's only worker is busy."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from datetime import timedelta
from typing import Any

import joblib
import pytest
from django.core.management import call_command
from django.db.models.functions import Now
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

from search.models import Result, Search, Status, WorkUnit
from search.services.searches import plan_search, search_create
from tests.conftest import create_search
from tests.services.test_units import SMALL, alive
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


LEASE, RECONCILE = 3, 2  # seconds: the cluster's FANOUT_LEASE_SECONDS and FANOUT_RECONCILE_SECONDS
FEW = 5  # seconds allowed on top for the pass itself and the broker's poll


@pytest.fixture
def qcluster_env() -> dict[str, str]:
    return {"FANOUT_LEASE_SECONDS": str(LEASE), "FANOUT_RECONCILE_SECONDS": str(RECONCILE)}


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

    # No reconcile from here: the cluster's own reconciler hands the unit out again, within the lease and a
    # reconcile interval at most (it took about 50 s when the reconciler was a task on the work queue).
    taken_over = lambda: WorkUnit.objects.get(pk=unit.pk).attempt == 2  # noqa: E731
    wait_for(taken_over, LEASE + RECONCILE + FEW, "another worker to take the unit over")
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
    # every core at work: a process per chain left, or (an odd number of chains) fewer processes each building its
    # forest in several threads, when the schedule's simulation finds that shorter (engine.schedule.plan_schedule)
    cores_used = (unit.processes_used or 0) * int(unit.threads.get("fit_threads", 1))
    assert min(joblib.cpu_count(), len(chains)) <= cores_used <= joblib.cpu_count()
    assert (unit.processes_used or 0) <= len(chains)
    cells = list(Result.objects.filter(search=search).values_list("candidate__index", "fold"))
    assert len(cells) == len(set(cells)) == search.n_fits
    assert dict(Result.objects.filter(pk__in=survivors).values_list("pk", "finished_at")) == survivors

    out = io.StringIO()
    call_command("exportsearch", search.pk, stdout=out)
    X, y = make_classification(**OPTIONS)
    reference = GridSearchCV(RandomForestClassifier(random_state=0), GRID, cv=5, refit=False).fit(X, y)
    assert_same_cv_results(json.loads(out.getvalue())["cv_results"], reference.cv_results_)


LONG = {
    "name": "busy", "estimator": "RandomForestClassifier", "params": {"random_state": 0, "n_estimators": 200},
    "param_grid": {"max_features": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]},  # not a path-reuse chain: each fit alone
    "dataset": {"name": "make_classification", "options": {"n_samples": 5000, "n_features": 20}}, "cv": 5,
}  # fmt: skip


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_the_reconciler_runs_while_the_only_worker_is_busy(qcluster: Any) -> None:
    busy = search_create(plan=plan_search(LONG))
    wait_for(lambda: Result.objects.filter(search=busy).exists(), 120, "the long unit to run")
    lost = create_search(SMALL)  # a unit whose worker vanished elsewhere: running, its lease expired
    WorkUnit.objects.filter(search=lost).update(
        status=Status.RUNNING, attempt=1, host="gone", worker_pid=1, lease_until=Now() - timedelta(seconds=1)
    )
    Search.objects.filter(pk=lost.pk).update(status=Status.RUNNING)
    wait_for(lambda: WorkUnit.objects.get(search=lost).status == Status.QUEUED, RECONCILE + FEW, "the reconciler")
    assert "worker on gone (pid 1) stopped answering" in WorkUnit.objects.get(search=lost).error
    busy_unit = WorkUnit.objects.get(search=busy)  # the only worker was busy with it all along
    assert busy_unit.status == Status.RUNNING and busy_unit.attempt == 1


@pytest.mark.django_db
def test_no_reconcile_task_waits_on_the_work_queue() -> None:
    """After `migrate` (the test database's included) no schedule puts the reconciler on the work queue,
    where it waited behind busy workers and its own message hid a lost one."""
    from django_q.models import Schedule

    assert not Schedule.objects.filter(func="search.tasks.reconcile").exists()

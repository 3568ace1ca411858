"""Several clusters on one search, and clusters that die: nothing lost, nothing twice, sklearn's scores.

Runs on whichever backend the session is configured with: the embedded default (SQLite + ORM broker)
in the main run, PostgreSQL + Redis in `make pytest-scaleout`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

from project.cluster import start_qcluster, stop_qcluster
from search.models import Result, Search, Status, WorkUnit
from search.selectors.cluster import live_clusters
from search.services.reconcile import units_reconcile
from search.services.searches import plan_search, search_create
from tests.conftest import project_env
from tests.services.test_units import alive
from tests.system.test_oracle import assert_same_cv_results

OPTIONS = {"n_samples": 1000, "n_features": 20, "random_state": 0}
GRID = {"n_estimators": list(range(10, 170, 10))}  # 16 candidates x 5 folds = 80 fits
SPEC = {
    "name": "shared", "estimator": "RandomForestClassifier", "params": {"random_state": 0}, "param_grid": GRID,
    "dataset": {"name": "make_classification", "options": OPTIONS}, "cv": 5, "n_jobs": 1,
}  # fmt: skip
CLUSTER_ENV = {"FANOUT_LEASE_SECONDS": "3"}
pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        proc = start_qcluster(project_env(**CLUSTER_ENV), tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_qcluster(proc)


def group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, reconcile: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if reconcile:  # what the every-minute schedule does, more often
            units_reconcile()
        time.sleep(0.5)


def assert_complete_and_exact(search: Search) -> None:
    search.refresh_from_db()
    assert search.status == Status.DONE, search.error
    cells = list(Result.objects.filter(search=search).values_list("candidate__index", "fold"))
    assert len(cells) == len(set(cells)) == search.n_fits
    out = io.StringIO()
    call_command("exportsearch", search.pk, stdout=out)
    X, y = make_classification(**OPTIONS)
    reference = GridSearchCV(RandomForestClassifier(random_state=0), GRID, cv=5, refit=False).fit(X, y)
    assert_same_cv_results(json.loads(out.getvalue())["cv_results"], reference.cv_results_)


def test_two_clusters_share_a_search_and_one_is_killed(clusters: Any, settings: Any) -> None:
    settings.FANOUT_RESEND_SECONDS = 1
    a, b = clusters("a"), clusters("b")
    wait_for(lambda: live_clusters() == 2, 30, "both clusters to report")
    search = search_create(plan=plan_search(SPEC))
    assert search.units.count() == 4  # 2 machines x several units each, >= 20 fits per unit

    def contributed() -> set[int | None]:
        """The clusters (process groups) whose workers have stored fits of this search."""
        workers = Result.objects.filter(search=search).values_list("unit__worker_pid", flat=True).distinct()
        return {group_of(pid) for pid in workers if pid}

    wait_for(lambda: {a.pid, b.pid} <= contributed(), 120, "fits from both clusters")
    fit_processes = set(Result.objects.filter(search=search).values_list("host", "pid"))
    running_in_a = list(
        WorkUnit.objects.filter(search=search, status=Status.RUNNING).values_list("worker_pid", "runner_pid")
    )
    os.killpg(a.pid, signal.SIGKILL)  # the whole machine's cluster, mid-search
    a.wait()
    orphans = [runner for worker, runner in running_in_a if runner and group_of(worker or 0) is None]
    wait_for(lambda: not any(alive(r) for r in orphans), 15, "the dead cluster's runners to exit")
    wait_for(lambda: Search.objects.get(pk=search.pk).is_finished, 240, "the search to finish", reconcile=True)
    assert_complete_and_exact(search)
    assert len(fit_processes) >= 2  # host and pid of every fit are recorded
    assert b.poll() is None


def test_a_cluster_restarted_mid_search_resumes_it(clusters: Any, settings: Any) -> None:
    settings.FANOUT_RESEND_SECONDS = 1
    first = clusters("first")
    search = search_create(plan=plan_search({**SPEC, "n_jobs": -1}))
    wait_for(lambda: Result.objects.filter(search=search).count() >= 6, 120, "the first fits")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = dict(Result.objects.filter(search=search).values_list("pk", "finished_at"))
    clusters("second")
    wait_for(lambda: Search.objects.get(pk=search.pk).is_finished, 240, "the search to finish", reconcile=True)
    assert_complete_and_exact(search)
    assert dict(Result.objects.filter(pk__in=done_before).values_list("pk", "finished_at")) == done_before


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[bool], None]]:
    """A redis-server of this test's own (so it can be stopped), on a free port: `switch(False)` stops it."""
    import shutil
    import socket

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    state: dict[str, subprocess.Popen[bytes] | int] = {"port": port}

    def switch(up: bool) -> None:
        proc = state.get("proc")
        if isinstance(proc, subprocess.Popen):
            proc.kill()
            proc.wait()
            state.pop("proc")
        if up:
            state["proc"] = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL)
            time.sleep(0.5)

    switch(True)
    os.environ["FANOUT_TEST_PRIVATE_REDIS"] = f"redis://127.0.0.1:{port}/0"
    yield switch
    switch(False)
    os.environ.pop("FANOUT_TEST_PRIVATE_REDIS", None)


def test_the_broker_down_for_a_while_loses_nothing(private_redis: Any, tmp_path: Path) -> None:
    """Redis stops mid-search and comes back empty: the running unit carries on, the lost messages are
    resent by the reconciler, the cluster survives, and every fit is stored once."""
    from tests.conftest import manage

    redis_url = os.environ["FANOUT_TEST_PRIVATE_REDIS"]
    env = {**CLUSTER_ENV, "REDIS_URL": redis_url, "FANOUT_RESEND_SECONDS": "1"}
    cluster = start_qcluster(project_env(**env), tmp_path / "redis-cluster.log")
    try:
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps([SPEC, {**SPEC, "name": "second"}]))
        out = manage("runsearch", str(spec), "--no-wait", timeout=120, **env)
        assert out.returncode == 0, out.stderr
        ids = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("search ")]
        wait_for(lambda: Result.objects.filter(search_id=ids[0]).count() >= 4, 120, "the first fits")
        private_redis(False)  # the broker goes away with everything queued in it
        time.sleep(5)
        private_redis(True)

        def finished() -> bool:
            manage("reconcile", timeout=60, **env)
            return all(s.is_finished for s in Search.objects.filter(pk__in=ids))

        wait_for(finished, 240, "both searches to finish")
        assert cluster.poll() is None  # the cluster rode out the outage
        for search in Search.objects.filter(pk__in=ids):
            assert_complete_and_exact(search)
    finally:
        stop_qcluster(cluster)

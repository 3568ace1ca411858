"""Scaling over machines: runs limited to k of the attached clusters, through the ordinary broker.

Two real qclusters share this machine, so each gets its own FANOUT_MACHINE_NAME (what units and fits
record as their host). Runs on whichever backend the session is configured with (SQLite + ORM broker,
or PostgreSQL + Redis with DATABASE_URL and REDIS_URL set).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django_q.models import Task

from project.cluster import start_qcluster, stop_qcluster
from search.charts import speedup as speedup_charts
from search.models import Result, ScalingStudy, Search, Status, WorkUnit
from search.selectors.cluster import live_clusters
from search.selectors.studies import study_axes, study_points, study_table
from search.services.scaling import study_create
from search.services.searches import plan_search, search_create
from tests.conftest import create_search, project_env
from tests.system.test_scaleout import wait_for

OPTIONS = {"n_samples": 500, "n_features": 20, "random_state": 0}
SPEC = {
    "name": "machines", "estimator": "RandomForestClassifier", "params": {"random_state": 0},
    "param_grid": {"n_estimators": list(range(10, 90, 5))},  # 16 candidates x 5 folds = 80 fits
    "dataset": {"name": "make_classification", "options": OPTIONS}, "cv": 5, "n_jobs": -1,
}  # fmt: skip
pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a qcluster that calls itself `name`; every one started is stopped with its process group."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, lease: int = 10) -> subprocess.Popen[bytes]:
        env = project_env(FANOUT_MACHINE_NAME=name, FANOUT_LEASE_SECONDS=str(lease))
        proc = start_qcluster(env, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_qcluster(proc)


def hosts(search: Search) -> set[str]:
    return set(Result.objects.filter(search=search).values_list("host", flat=True))


def assert_one_result_per_cell(search: Search) -> None:
    search.refresh_from_db()
    assert search.status == Status.DONE, search.error
    cells = list(Result.objects.filter(search=search).values_list("candidate__index", "fold"))
    assert len(cells) == len(set(cells)) == search.n_fits


def test_a_machines_study_stores_one_measured_run_per_machine_count(machines: Any) -> None:
    machines("machine-a"), machines("machine-b")
    wait_for(lambda: live_clusters() == 2, 30, "both clusters to report")
    assert study_axes() == ["processes", "machines"]
    search = create_search(SPEC)
    study = study_create(search=search, axis="machines")
    assert study.n_machines_list == [1, 2] and study.n_candidates == 16
    wait_for(lambda: ScalingStudy.objects.get(pk=study.pk).status in Status.FINISHED, 300, "the study to finish")
    study.refresh_from_db()
    assert study.status == Status.DONE, study.error
    one, two = study.runs.order_by("max_machines")
    assert (one.max_machines, two.max_machines) == (1, 2) and one.n_jobs == two.n_jobs == -1
    for run in (one, two):
        assert_one_result_per_cell(run)
    assert len(hosts(one)) == 1 and hosts(two) == {"machine-a", "machine-b"}
    assert len(set(WorkUnit.objects.filter(search=one).values_list("host", flat=True))) == 1
    table = study_table(study)
    assert table["unit"] == "machines" and [row["width"] for row in table["rows"]] == [1, 2]
    assert table["rows"][0]["speedup"] == pytest.approx(1.0) and table["rows"][1]["speedup"] > 0
    assert table["rows"][1]["machines"] == ["machine-a", "machine-b"] and table["warnings"] == []
    assert study.serial_fraction is not None and 0 <= study.serial_fraction <= 1
    figure = speedup_charts.scaling_figure(study_points(study), study.serial_fraction, 2, study.axis)
    assert figure["layout"]["xaxis"]["title"]["text"] == "machines"
    print(f"\n1 machine: {one.accounting['wall']:.2f} s, 2 machines: {two.accounting['wall']:.2f} s")


def test_a_run_limited_to_one_machine_stays_there_while_the_other_declines(machines: Any, settings: Any) -> None:
    machines("machine-a"), machines("machine-b")
    wait_for(lambda: live_clusters() == 2, 30, "both clusters to report")
    settings.FANOUT_MAX_FITS_PER_UNIT = 10  # 8 units, so the second machine is offered some
    search = search_create(plan=plan_search(SPEC), max_machines=1)
    assert search.units.count() == 8
    wait_for(lambda: Search.objects.get(pk=search.pk).is_finished, 300, "the search to finish")
    assert_one_result_per_cell(search)
    units = search.units.order_by("started_at").values_list("index", "host", "started_at", "finished_at")
    timeline = "; ".join(f"unit {i} on {h} {a:%S.%f}-{b:%S.%f}" for i, h, a, b in units)
    assert len(hosts(search)) == 1, timeline
    assert hosts(search) == set(WorkUnit.objects.filter(search=search).values_list("host", flat=True))
    declined = [t for t in Task.objects.filter(func="search.tasks.run_unit") if t.result == "declined"]
    assert declined, "the other machine was never offered a unit"


def test_a_dead_machine_gives_its_place_to_another(machines: Any, settings: Any) -> None:
    a, b = machines("machine-a", lease=3), machines("machine-b", lease=3)
    wait_for(lambda: live_clusters() == 2, 30, "both clusters to report")
    settings.FANOUT_MAX_FITS_PER_UNIT = 10
    search = search_create(plan=plan_search(SPEC), max_machines=1)
    wait_for(lambda: Result.objects.filter(search=search).count() >= 10, 120, "the first fits")
    (first,) = hosts(search)
    dead, alive = (a, "machine-b") if first == "machine-a" else (b, "machine-a")
    os.killpg(dead.pid, signal.SIGKILL)  # the machine holding the run's only place, mid-run
    dead.wait()
    wait_for(lambda: Search.objects.get(pk=search.pk).is_finished, 300, "the search to finish", reconcile=True)
    assert_one_result_per_cell(search)
    assert hosts(search) == {first, alive}  # the survivor took the dead machine's place

"""Scaling studies: one real, measured run per process (or machine) count, then an Amdahl fit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from search.models import ScalingStudy, Search, Status, WorkUnit
from search.selectors.studies import study_axes, study_label, study_table
from search.services.machines import Declined
from search.services.scaling import study_advance, study_create
from search.services.searches import plan_search, search_cancel, search_create
from search.services.units import unit_claim, unit_run
from tests.conftest import create_search, queued_messages, run_inline

SPEC = {
    "name": "rf", "estimator": "RandomForestClassifier", "params": {"random_state": 0},
    "param_grid": {"n_estimators": [20, 40, 60, 80, 100]}, "dataset": "breast_cancer", "cv": 4,
}  # fmt: skip
pytestmark = pytest.mark.django_db


def test_a_study_stores_one_measured_run_per_core_count() -> None:
    search = run_inline(create_search(SPEC))
    study = study_create(search=search, n_jobs_list=[1, 2], enqueue=False)
    runs = list(study.runs.order_by("study_n_jobs"))
    assert [r.study_n_jobs for r in runs] == [1, 2] and [r.spec["n_jobs"] for r in runs] == [1, 2]
    assert all(r.n_candidates == 5 and r.n_fits == 20 for r in runs)
    study_advance(study_id=study.pk)  # what the on-commit hook does: enqueue the first run only
    assert queued_messages() == 1
    for run in runs:  # the cluster's job, done here in order
        run_inline(run)
    study.refresh_from_db()
    assert study.status == Status.DONE, study.error
    table = study_table(study)
    assert [row["processes"] for row in table["rows"]] == [1, 2]
    assert table["rows"][0]["speedup"] == pytest.approx(1.0)
    assert all(row["wall"] and row["wall"] > 0 for row in table["rows"])
    one, two = (Search.objects.get(pk=row["search"]) for row in table["rows"])
    assert one.cores_used == 1 and two.cores_used == 2  # each point is a real run at that width
    assert table["rows"][1]["speedup"] == pytest.approx(one.accounting["wall"] / two.accounting["wall"])
    assert study.serial_fraction is not None and 0 <= study.serial_fraction <= 1
    assert set(table["projections"]) == {"4", "8", "16"}


def test_a_subset_of_a_large_grid_and_one_process_always_included() -> None:
    search = create_search({**SPEC, "param_grid": {"n_estimators": list(range(10, 410, 10))}})
    study = study_create(search=search, n_jobs_list=[2], enqueue=False)
    assert study.n_jobs_list == [1, 2] and study.n_candidates == 25  # ceil(100 fits / 4 folds)


def test_a_cancelled_run_ends_the_study() -> None:
    search = run_inline(create_search(SPEC))
    study = study_create(search=search, n_jobs_list=[1, 2], enqueue=False)
    first = study.runs.order_by("study_n_jobs").first()
    assert first is not None
    search_cancel(search=first)
    study.refresh_from_db()
    assert study.status == Status.CANCELLED
    assert set(study.runs.values_list("status", flat=True)) == {Status.CANCELLED}
    assert ScalingStudy.objects.get().error == f"run {first.pk} was cancelled"


def test_a_run_limited_to_one_machine_declines_a_second_one_until_the_first_stops_answering(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 8  # 2 candidates x 4 folds per unit: 3 units
    search = search_create(plan=plan_search(SPEC), enqueue=False, max_machines=1)
    first, second, third = search.units.order_by("index")
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "machine-a")
    assert unit_claim(unit_id=first.pk) is not None
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "machine-b")
    with pytest.raises(Declined):
        unit_claim(unit_id=second.pk)
    assert unit_run(unit_id=second.pk) == "declined"  # sent to the broker again, then DECLINE_DELAY
    second.refresh_from_db()
    assert second.status == Status.QUEUED and second.q_task_id and queued_messages() == 1
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "machine-a")  # the machine that holds the place may take more
    assert unit_claim(unit_id=second.pk) is not None
    # machine-a dies: once its leases have expired, its place is free for machine-b
    WorkUnit.objects.filter(search=search).update(lease_until=timezone.now() - timedelta(seconds=1))
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "machine-b")
    unit = unit_claim(unit_id=third.pk)
    assert unit is not None and unit.host == "machine-b"
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "machine-a")  # and the old one, back, is now the one declined
    with pytest.raises(Declined):
        unit_claim(unit_id=first.pk)


def test_a_study_over_machines_needs_several_clusters() -> None:
    search = create_search(SPEC)
    with pytest.raises(ValueError, match="needs that many clusters attached; 0 reporting now"):
        study_create(search=search, axis="machines", enqueue=False)
    with pytest.raises(ValueError, match="axis must be one of processes, machines"):
        study_create(search=search, axis="cores", enqueue=False)
    assert study_axes() == ["processes"]


def test_a_machines_point_that_ran_on_fewer_machines_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("search.services.scaling.live_clusters", lambda: 2)
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "only-one")
    search = create_search(SPEC)
    study = study_create(search=search, axis="machines", enqueue=False)
    assert (study.n_jobs_list, study.n_machines_list, study_label(study)) == ([-1], [1, 2], "1, 2 machines")
    for run in study.runs.order_by("max_machines"):
        run_inline(run)
    study.refresh_from_db()
    table = study_table(study)
    assert study.status == Status.DONE and [row["width"] for row in table["rows"]] == [1, 2]
    assert [row["machines"] for row in table["rows"]] == [["only-one"], ["only-one"]]
    second = table["rows"][1]["search"]
    assert table["warnings"] == [f"run {second} was given 2 machines but ran on 1"]

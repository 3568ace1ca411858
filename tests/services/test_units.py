"""Execution: claims, idempotent writes, resume after a crash, cancel, reconcile; real runner processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

from search.models import Result, Search, Status, WorkUnit
from search.services.machines import Declined
from search.services.reconcile import units_reconcile
from search.services.searches import search_cancel, search_enqueue, unit_ranges
from search.services.units import Outcome, results_write, unit_claim, unit_run
from tests.conftest import create_search, queued_messages, run_inline

SMALL = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0, 10.0]}, "dataset": "iris", "cv": 3}
SLOW = {
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": {"n_estimators": [60, 80, 100, 120, 140, 160]},
    "dataset": {"name": "make_classification", "options": {"n_samples": 3000, "n_features": 30}},
    "cv": 5,
}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split(")")[-1].split()[0] != "Z"


def cells(search: Search) -> list[tuple[int, int]]:
    return sorted(Result.objects.filter(search=search).values_list("candidate__index", "fold"))


@pytest.mark.django_db
def test_run_records_every_fit_and_the_processes_used() -> None:
    search = run_inline(create_search(SMALL))
    assert search.status == Status.DONE
    assert cells(search) == [(c, f) for c in range(3) for f in range(3)]
    unit = search.units.get(kind="cv")
    assert unit.status == Status.DONE and unit.attempt == 1 and unit.fits_run == 9
    assert unit.n_jobs_requested == -1 and unit.n_jobs_effective == os.cpu_count()
    assert unit.processes_used == len(set(Result.objects.filter(search=search).values_list("pid", flat=True)))
    # cores used = the most fits that really ran at once, from the stored rows (tiny fits need not overlap)
    rows = Result.objects.filter(search=search).values_list("started_at", "finished_at")
    events = sorted([(a, 1) for a, _ in rows] + [(b, -1) for _, b in rows], key=lambda e: (e[0], e[1]))
    running = [sum(step for _, step in events[: i + 1]) for i in range(len(events))]
    assert search.cores_used == max(running) and 1 <= search.cores_used <= unit.processes_used
    assert search.best_index is not None and search.best_score is not None
    assert search.started_at and search.finished_at and search.finished_at >= search.started_at


@pytest.mark.django_db
def test_running_the_same_unit_twice_stores_each_fit_once() -> None:
    search = run_inline(create_search(SMALL))
    unit = search.units.get(kind="cv")
    assert unit_run(unit_id=unit.pk) == "skipped"  # a duplicate delivery: already done
    WorkUnit.objects.filter(pk=unit.pk).update(status=Status.QUEUED)  # force it through again
    Search.objects.filter(pk=search.pk).update(status=Status.RUNNING)
    assert unit_run(unit_id=unit.pk) == "done"
    unit.refresh_from_db()
    assert unit.attempt == 2 and unit.fits_run == 0  # nothing recomputed
    assert Result.objects.filter(search=search).count() == 9


@pytest.mark.django_db
def test_writing_the_same_fits_twice_keeps_one_row_each() -> None:
    search = run_inline(create_search(SMALL))
    unit = search.units.get(kind="cv")
    rows = list(Result.objects.filter(search=search).values("id", "test_scores"))
    fits = [
        {
            "candidate": c,
            "fold": f,
            "test_scores": {"score": 0.0},
            "train_scores": None,
            "fit_time": 1.0,
            "score_time": 1.0,
            "started_at": time.time(),
            "finished_at": time.time(),
            "host": "elsewhere",
            "pid": 1,
            "n_test_samples": 50,
            "error": "",
        }
        for c in range(3)
        for f in range(3)
    ]
    results_write(unit=unit, fits=fits)
    results_write(unit=unit, fits=fits)
    assert list(Result.objects.filter(search=search).values("id", "test_scores")) == rows  # first write wins


@pytest.mark.django_db
def test_resume_computes_only_the_missing_fits() -> None:
    search = run_inline(create_search(SMALL))
    kept = dict(Result.objects.filter(search=search).exclude(candidate__index=1).values_list("pk", "test_scores"))
    Result.objects.filter(search=search, candidate__index=1).delete()
    WorkUnit.objects.filter(search=search).update(status=Status.QUEUED)
    Search.objects.filter(pk=search.pk).update(status=Status.RUNNING)
    assert unit_run(unit_id=search.units.get(kind="cv").pk) == "done"
    assert search.units.get(kind="cv").fits_run == 3
    assert Result.objects.filter(search=search).count() == 9
    assert dict(Result.objects.filter(pk__in=kept).values_list("pk", "test_scores")) == kept


@pytest.mark.django_db
def test_a_unit_is_claimed_once() -> None:
    search = create_search(SMALL)
    unit = search.units.get(kind="cv")
    assert unit_claim(unit_id=unit.pk) is not None
    assert unit_claim(unit_id=unit.pk) is None  # lease still valid
    search.refresh_from_db()
    assert search.status == Status.RUNNING


@pytest.mark.django_db
def test_reconcile_hands_out_a_unit_whose_lease_expired() -> None:
    search = create_search(SMALL)
    unit = unit_claim(unit_id=search.units.get(kind="cv").pk)
    assert unit is not None
    WorkUnit.objects.filter(pk=unit.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    before = queued_messages()
    assert units_reconcile()["requeued"] == 1
    unit.refresh_from_db()
    assert unit.status == Status.QUEUED and "stopped answering" in unit.error
    assert queued_messages() == before + 1  # enqueued again
    assert unit_run(unit_id=unit.pk) == "done"
    assert run_inline(search).status == Status.DONE  # the last fit queued the refit, which ends the search


@pytest.mark.django_db
def test_reconcile_fails_a_unit_after_max_attempts(settings: Any) -> None:
    search = create_search(SMALL)
    unit = search.units.get(kind="cv")
    WorkUnit.objects.filter(pk=unit.pk).update(
        status=Status.RUNNING, attempt=settings.FANOUT_MAX_ATTEMPTS, lease_until=timezone.now() - timedelta(seconds=1)
    )
    Search.objects.filter(pk=search.pk).update(status=Status.RUNNING)
    assert units_reconcile() == {"requeued": 0, "resent": 0, "failed": 1, "finalized": 1, "predictions": 0}
    search.refresh_from_db()
    assert search.status == Status.FAILED and "stopped answering" in search.error


def machine_clock(monkeypatch: Any, seconds: float) -> None:
    """This machine's own clock (django.utils.timezone.now) `seconds` off the database's."""
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + timedelta(seconds=seconds))


@pytest.mark.django_db
def test_a_machine_clock_30_s_ahead_does_not_requeue_a_live_unit(monkeypatch: Any) -> None:
    search = create_search(SMALL)
    unit = unit_claim(unit_id=search.units.get(kind="cv").pk)  # its lease was just taken: 30 s to go
    assert unit is not None
    machine_clock(monkeypatch, 30)  # the reconciling machine runs 30 s ahead
    assert units_reconcile()["requeued"] == 0
    assert unit_claim(unit_id=unit.pk) is None  # nor may a worker there take it over
    unit.refresh_from_db()
    assert unit.status == Status.RUNNING and unit.attempt == 1


@pytest.mark.django_db
def test_a_machine_clock_behind_still_holds_its_lease(monkeypatch: Any) -> None:
    search = create_search(SMALL)
    machine_clock(monkeypatch, -60)  # the claiming machine runs a minute behind
    unit = unit_claim(unit_id=search.units.get(kind="cv").pk)
    assert unit is not None
    monkeypatch.undo()  # another machine, on time, reconciles
    assert units_reconcile()["requeued"] == 0
    assert WorkUnit.objects.get(pk=unit.pk).status == Status.RUNNING


@pytest.mark.django_db
def test_a_machine_clock_behind_keeps_its_place_in_a_search_limited_to_one_machine(
    monkeypatch: Any, settings: Any
) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 3  # SMALL: 3 units
    search = create_search(SMALL, max_machines=1)
    first, second = list(search.units.order_by("index"))[:2]
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "slow-clock")
    machine_clock(monkeypatch, -60)
    assert unit_run(unit_id=first.pk) == "done"  # finished just now, by the database's clock
    monkeypatch.undo()
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "on-time")
    with pytest.raises(Declined):  # the first machine, between two units, still holds the only place
        unit_claim(unit_id=second.pk)


@pytest.mark.django_db
def test_a_claim_leaves_the_data_sets_bytes_in_the_database(tmp_path: Any) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    search = create_search({**SMALL, "dataset": {"csv": str(path), "target": "label"}})
    with CaptureQueriesContext(connection) as queries:
        unit = unit_claim(unit_id=search.units.get(kind="cv").pk)
    assert unit is not None and unit.search.dataset.kind == "csv"
    assert not [q["sql"] for q in queries if '"search_dataset"."content"' in q["sql"]]


@pytest.mark.django_db
def test_cancel_before_start_drops_queued_units() -> None:
    search = create_search(SMALL)
    assert search_cancel(search=search)
    assert unit_run(unit_id=search.units.get(kind="cv").pk) == "skipped"
    assert search.units.get(kind="cv").status == Status.CANCELLED
    assert Result.objects.filter(search=search).count() == 0
    assert not search_cancel(search=search)  # already over


def _run_in_thread(unit_id: int) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []

    def target() -> None:
        try:
            outcome.append(unit_run(unit_id=unit_id))
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def _wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_cancel_while_running_kills_the_runner_and_its_workers(settings: Any) -> None:
    settings.FANOUT_PATH_REUSE = False  # grown forests finish SLOW in ~3 s, before the test can cancel it
    search = create_search(SLOW)
    unit = search.units.get(kind="cv")
    thread, outcome = _run_in_thread(unit.pk)
    _wait_for(lambda: WorkUnit.objects.get(pk=unit.pk).processes_used == os.cpu_count())
    unit.refresh_from_db()
    pids = [unit.runner_pid, *unit.worker_pids]
    assert all(alive(p) for p in pids)
    search_cancel(search=search)
    thread.join(timeout=15)
    assert outcome == ["stopped"]
    assert not any(alive(p) for p in pids)  # the runner and every loky worker are gone
    unit.refresh_from_db()
    assert unit.status == Status.CANCELLED
    assert Search.objects.get(pk=search.pk).status == Status.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_killed_runner_is_retried_without_recomputing_finished_fits() -> None:
    search = create_search(SLOW)
    unit = search.units.get(kind="cv")
    thread, outcome = _run_in_thread(unit.pk)
    _wait_for(lambda: Result.objects.filter(search=search).count() >= 4)
    unit.refresh_from_db()
    assert unit.runner_pid is not None
    os.kill(unit.runner_pid, signal.SIGKILL)  # the runner dies mid-unit; its loky workers go with its group
    thread.join(timeout=30)
    assert outcome == ["requeued"]
    unit.refresh_from_db()
    assert unit.status == Status.QUEUED and "exited with code -9" in unit.error
    survivors = dict(Result.objects.filter(search=search).values_list("pk", "finished_at"))
    assert unit_run(unit_id=unit.pk) == "done"
    unit.refresh_from_db()
    assert unit.attempt == 2 and unit.fits_run == 30 - len(survivors)
    assert Result.objects.filter(search=search).count() == 30
    assert dict(Result.objects.filter(pk__in=survivors).values_list("pk", "finished_at")) == survivors
    assert run_inline(search).status == Status.DONE  # the last fit queued the refit, which ends the search


def break_dataset(search: Search) -> None:
    """Make the search's data set fail inside the runner (its row is shared by searches of the same data)."""
    search.dataset.source = {"name": "make_moons", "options": {"n_samples": -1}}
    search.dataset.kind = "generator"
    search.dataset.save()


@pytest.mark.django_db
def test_runner_error_fails_the_search_with_its_message(tmp_path: Any) -> None:
    search = create_search(SMALL)
    break_dataset(search)
    run_inline(search)
    assert search.status == Status.FAILED
    assert "n_samples" in search.error and search.units.get(kind="cv").status == Status.FAILED


@pytest.mark.django_db
def test_reconcile_resends_units_whose_message_was_lost(settings: Any) -> None:
    from django_q.brokers import get_broker

    settings.FANOUT_RESEND_SECONDS = 0
    search = create_search(SMALL)
    search_enqueue(search_id=search.pk)
    assert units_reconcile()["resent"] == 0  # the message is still there
    get_broker().purge_queue()  # what a killed Redis cluster or a rotated SECRET_KEY does
    assert queued_messages() == 0
    assert units_reconcile()["resent"] == 1
    assert queued_messages() == 1
    assert unit_run(unit_id=search.units.get(kind="cv").pk) == "done"
    assert units_reconcile()["resent"] == 0


@pytest.mark.parametrize(
    ("candidates", "splits", "machines", "expected"),
    [
        (18, 5, 1, [(0, 18)]),  # one machine: one unit, no extra tails
        (18, 5, 2, [(0, 5), (5, 10), (10, 15), (15, 18)]),  # 2 x 4 wanted, but >= 20 fits each: 4
        (400, 5, 3, [(i * 34, min(400, (i + 1) * 34)) for i in range(12)]),
        (3, 5, 4, [(0, 3)]),  # 15 fits: too few to split
        (40, 2, 8, [(0, 10), (10, 20), (20, 30), (30, 40)]),  # 80 fits: 4 units of 20, not 32
        (1000, 5, 1, [(0, 200), (200, 400), (400, 600), (600, 800), (800, 1000)]),  # FANOUT_MAX_FITS_PER_UNIT
    ],
)
def test_units_are_sized_for_the_machines_attached(
    candidates: int, splits: int, machines: int, expected: list[tuple[int, int]]
) -> None:
    assert unit_ranges(candidates, splits, machines) == expected


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_longer_than_the_busy_timeout_loses_nothing(settings: Any, caplog: Any) -> None:
    """Another process holds the SQLite database locked for longer than the 20 s busy timeout: the
    running unit's writes fail, are retried, and every fit lands exactly once."""
    import sqlite3

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the lock-out is SQLite's; PostgreSQL outages are covered by the same retry")
    search = create_search(SLOW)
    unit = search.units.get(kind="cv")
    thread, outcome = _run_in_thread(unit.pk)
    _wait_for(lambda: Result.objects.filter(search=search).count() >= 2)
    blocker = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=30, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    time.sleep(settings.DATABASES["default"]["OPTIONS"]["timeout"] + 3)
    blocker.execute("COMMIT")
    blocker.close()
    thread.join(timeout=120)
    assert outcome == ["done"]
    assert "database unavailable (database is locked); retrying" in caplog.text
    cells_ = cells(search)
    assert len(cells_) == len(set(cells_)) == 30
    assert run_inline(search).status == Status.DONE  # the last fit queued the refit, which ends the search


@pytest.mark.django_db
def test_the_worker_that_ends_the_last_cv_unit_runs_the_refit_at_once(django_capture_on_commit_callbacks: Any) -> None:
    """No broker round trip between the last fit and the refit: the same call ends the search with its model,
    and the refit's own message, sent when it was queued, then finds nothing to run."""
    from search.services.runners import runners_kept
    from search.services.searches import plan_search, search_create
    from search.services.units import Outcome

    with django_capture_on_commit_callbacks(execute=True):
        search = search_create(plan=plan_search(SMALL))  # its unit sent through the broker
    with runners_kept(), django_capture_on_commit_callbacks(execute=True):
        assert unit_run(unit_id=search.units.get(kind="cv").pk) == Outcome.DONE
    search.refresh_from_db()
    refit = search.units.get(kind="refit")
    assert refit.status == Status.DONE and refit.attempt == 1 and refit.q_task_id  # its message was sent
    assert search.status == Status.DONE and not search.refit_error and search.refit_time is not None
    assert unit_run(unit_id=refit.pk) == Outcome.SKIPPED  # that message: claimed once, never run twice
    assert WorkUnit.objects.get(pk=refit.pk).attempt == 1


def test_units_for_several_machines_are_of_equal_cost_and_keep_chains_whole() -> None:
    """The reference grid (n_estimators 50/100/200 grown as one chain per max_depth x min_samples_split) on two
    machines: one unit per chain, not 5/5/5/3 candidates cutting two chains."""
    from sklearn.model_selection import ParameterGrid

    from search.engine.cost import relative_cost
    from search.engine.schedule import chain_groups

    grid = {"n_estimators": [50, 100, 200], "max_depth": [None, 5, 10], "min_samples_split": [2, 5]}
    params = list(ParameterGrid(grid))
    costs = [relative_cost({"random_state": 0, **p}) for p in params]
    groups = chain_groups([("RandomForestClassifier", "sklearn.ensemble")], params)
    assert unit_ranges(18, 5, 2, costs=costs, groups=groups) == [(i, i + 3) for i in range(0, 18, 3)]
    assert unit_ranges(18, 5, 1, costs=costs, groups=groups) == [(0, 18)]  # one machine: one unit
    # no chains (an SVC grid): equal cost, not equal counts, and a short last unit per machine
    svc = [{"C": c} for c in (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0) for _ in range(10)]
    ranges = unit_ranges(60, 5, 2, costs=[relative_cost(p) for p in svc])
    sums = [sum(relative_cost(p) for p in svc[a:b]) for a, b in ranges]
    assert len(ranges) == 8 and ranges[0][0] == 0 and ranges[-1][1] == 60
    assert max(sums[:-2]) / min(sums[:-2]) < 1.5 and max(sums[-2:]) < min(sums[:-2])


def test_a_ridge_alpha_grid_over_eight_decades_is_not_one_unit_of_a_few_candidates() -> None:
    """A ridge solve costs the same at every alpha (bench/tiny_fits.py --ridge: 300 alphas of geomspace(1e-4, 1e4)
    in 2 units). Weighed by 1 / alpha, the first unit held 11 candidates (0.25 s of fits) and the second the other
    289 (5.3 s), each paying its claim and hand-off; no unit may now be under a quarter of the candidates."""
    import numpy as np

    from search.engine.cost import relative_cost

    alphas = [float(f"{a:.6g}") for a in np.geomspace(1e-4, 1e4, 300)]
    ranges = unit_ranges(300, 5, 1, costs=[relative_cost({"alpha": a}) for a in alphas])
    assert len(ranges) == 2 and ranges[0][0] == 0 and ranges[-1][1] == 300
    assert min(b - a for a, b in ranges) >= 75


MANY_UNITS = {
    "estimator": "DecisionTreeClassifier",
    "params": {"max_depth": 3},
    "param_grid": {"random_state": list(range(80))},  # the same estimated cost for every candidate
    "dataset": "iris",
    "cv": 5,
}  # 80 candidates × 5 folds; with FANOUT_MAX_FITS_PER_UNIT=50, 8 units of 10 candidates


def _finish_first(search: Search, seconds: float) -> WorkUnit:
    """The search's first unit as if it had run: done, every fit computed, in `seconds` from claim to finish."""
    first = search.units.order_by("index").first()
    assert first is not None
    now = timezone.now()
    WorkUnit.objects.filter(pk=first.pk).update(
        status=Status.DONE, attempt=1, fits_run=first.n_fits, started_at=now - timedelta(seconds=seconds),
        finished_at=now,
    )  # fmt: skip
    return first


@pytest.mark.django_db
def test_a_claim_takes_over_the_short_units_after_it_within_the_unit_budget(settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT, settings.FANOUT_UNIT_SECONDS = 50, 5
    search = create_search(MANY_UNITS, max_machines=1)  # one machine, whatever else reports to the broker
    ranges = list(search.units.order_by("index").values_list("candidate_start", "candidate_stop"))
    assert ranges == [(10 * i, 10 * i + 10) for i in range(8)]
    _finish_first(search, seconds=1.2)  # 50 fits in 1.2 s: 4 such units make 4.8 s, a fifth would pass 5 s
    second = search.units.order_by("index")[1]
    claimed = unit_claim(unit_id=second.pk)
    assert claimed is not None and (claimed.candidate_start, claimed.candidate_stop) == (10, 50)
    left = list(search.units.order_by("index").values_list("index", "candidate_start", "candidate_stop", "status"))
    assert left == [(0, 0, 10, Status.DONE), (1, 10, 50, Status.RUNNING), (5, 50, 60, Status.QUEUED),
                    (6, 60, 70, Status.QUEUED), (7, 70, 80, Status.QUEUED)]  # units 2-4 taken over  # fmt: skip


@pytest.mark.django_db
def test_a_unit_already_as_long_as_the_budget_or_a_first_unit_takes_nothing(settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT, settings.FANOUT_UNIT_SECONDS = 50, 5
    search = create_search(MANY_UNITS, max_machines=1)  # one machine, whatever else reports to the broker
    first = unit_claim(unit_id=search.units.order_by("index")[0].pk)  # nothing measured yet: nothing taken
    assert first is not None and first.candidate_stop == 10 and search.units.count() == 8
    WorkUnit.objects.filter(pk=first.pk).update(status=Status.QUEUED)
    _finish_first(search, seconds=6.0)
    claimed = unit_claim(unit_id=search.units.order_by("index")[1].pk)
    assert claimed is not None and claimed.candidate_stop == 20 and search.units.count() == 8


@pytest.mark.django_db
def test_merged_units_store_every_fit_once_and_the_taken_units_messages_skip(settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT, settings.FANOUT_UNIT_SECONDS = 50, 3600
    search = create_search(MANY_UNITS, max_machines=1)  # one machine, whatever else reports to the broker
    units = list(search.units.order_by("index"))
    outcomes = [unit_run(unit_id=u.pk) for u in units]  # the messages, in the broker's order
    assert outcomes[:2] == ["done", "done"] and set(outcomes[2:]) <= {"done", "skipped"}
    assert outcomes.count(Outcome.SKIPPED) >= 5  # the second unit took over (nearly) all the others
    search.refresh_from_db()
    assert search.status == Status.DONE and search.n_fits_done == 400
    assert cells(search) == [(c, f) for c in range(80) for f in range(5)]
    assert Result.objects.filter(search=search).count() == 400
    reference = GridSearchCV(
        DecisionTreeClassifier(max_depth=3), MANY_UNITS["param_grid"], cv=5
    ).fit(*load_iris(return_X_y=True)).cv_results_  # fmt: skip
    stored = {json.dumps(p, sort_keys=True): score for p, score in search.candidates.values_list("params", "score")}
    assert [stored[json.dumps(p, sort_keys=True)] for p in reference["params"]] == list(reference["mean_test_score"])


@pytest.mark.django_db
def test_a_search_whose_units_merged_queues_its_refit_past_the_last_unit(settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT, settings.FANOUT_UNIT_SECONDS = 50, 5
    search = create_search(MANY_UNITS, max_machines=1)  # refit on: the best candidate is fitted once more
    first, second = search.units.order_by("index")[:2]
    assert unit_run(unit_id=first.pk) == "done"
    now = timezone.now()  # the first unit as if it took 1.2 s: the second takes over units 2-4 and no more
    WorkUnit.objects.filter(pk=first.pk).update(started_at=now - timedelta(seconds=1.2), finished_at=now)
    assert unit_run(unit_id=second.pk) == "done"
    assert list(search.units.order_by("index").values_list("index", flat=True)) == [0, 1, 5, 6, 7]
    settings.FANOUT_UNIT_SECONDS = 0  # the rest as planned: 5 units left, numbered up to 7
    for unit in search.units.filter(status=Status.QUEUED).order_by("index"):
        unit_run(unit_id=unit.pk)
    search.refresh_from_db()
    assert search.status == Status.DONE, search.error
    refit = search.units.get(kind=WorkUnit.Kind.REFIT)
    assert refit.status == Status.DONE and refit.index == 8
    assert Result.objects.filter(search=search).count() == 400

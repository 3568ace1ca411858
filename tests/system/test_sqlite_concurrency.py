"""Many processes streaming results into the embedded SQLite database at once: no "database is locked"."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from project.cluster import ROOT
from search.engine import datasets
from search.models import Result, Search
from search.services.finalize import results_insert
from search.services.searches import plan_search, search_create
from tests.conftest import create_search, project_env

WRITERS = 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["stream", "read-then-write"])
def test_concurrent_writers_never_hit_a_locked_database(mode: str) -> None:
    spec = {"estimator": "Ridge", "param_grid": {"alpha": [float(a) for a in range(1, 61)]}, "dataset": "diabetes"}
    search = create_search(spec)
    unit = search.units.get()
    # Overlapping slices: most cells are written by two processes, so conflicts are exercised too.
    slices = [((i * 10) % 60, (i * 10) % 60 + 20) for i in range(WRITERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.system.sqlite_writer", str(unit.pk), str(a), str(min(b, 60)), mode],
            cwd=ROOT,
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a, b in slices
    ]
    reads = 0
    while any(p.poll() is None for p in procs):  # the web process reading progress meanwhile
        Search.objects.get(pk=search.pk)
        reads += 1
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * WRITERS, outputs
    assert [out.strip() for out, _ in outputs] == ["0"] * WRITERS, outputs
    assert "database is locked" not in "".join(err for _, err in outputs)
    assert Result.objects.filter(search=search).count() == 300  # 60 candidates x 5 folds, each once
    search.refresh_from_db()
    assert search.n_fits_done == 300 and reads > 0


def _csv_file(path: Any) -> dict[str, Any]:
    rows = "\n".join(f"{i % 7},{(i * 3) % 11},{i % 2}" for i in range(60))
    path.write_text(f"a,b,y\n{rows}\n")
    return {"csv": str(path), "target": "y"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["csv", "generator"])
def test_a_search_being_created_leaves_the_database_writable_while_its_data_loads(
    source: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading, parsing or generating the data (and planning on it) happens before the write lock is taken: a
    worker's heartbeat meanwhile is written at once, not after the data is in (its lease could lapse)."""
    running = create_search({"estimator": "Ridge", "param_grid": {"alpha": [1.0]}, "dataset": "diabetes"})
    unit = running.units.get()
    loading, release = threading.Event(), threading.Event()
    slow = "read_csv" if source == "csv" else "generate"
    real = getattr(datasets, slow)

    def held_up(*args: Any) -> Any:  # the data takes as long as the test wants
        loading.set()
        release.wait(60)
        return real(*args)

    monkeypatch.setattr(datasets, slow, held_up)
    dataset = (
        _csv_file(tmp_path / "rows.csv")
        if source == "csv"
        else {"name": "make_classification", "options": {"n_samples": 60, "n_features": 4}}
    )
    plan = plan_search({"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0]}, "dataset": dataset})
    created: dict[str, Any] = {}

    def create() -> None:
        try:
            created["search"] = search_create(plan=plan, enqueue=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            created["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=create)
    thread.start()
    heartbeat: str | int = "not tried"
    try:
        assert loading.wait(60), created
        db = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=2, isolation_level=None)
        try:  # another process renewing its lease, as `_heartbeat` does
            db.execute("BEGIN IMMEDIATE")
            heartbeat = db.execute(
                "UPDATE search_workunit SET lease_until = ? WHERE id = ?", ("2100-01-01 00:00:00", unit.pk)
            ).rowcount
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            heartbeat = str(exc)
        finally:
            db.close()
    finally:
        release.set()
        thread.join(60)
    assert heartbeat == 1  # written while the data was still loading ("database is locked" before)
    assert "error" not in created, created
    search = Search.objects.get(pk=created["search"].pk)
    assert search.n_fits == 2 * 5 and search.units.count() == 1 and search.dataset.n_samples == 60


def _fits(search: Search, cells: list[tuple[int, int]]) -> list[Result]:
    """Stored fits of these (candidate, fold) cells: a failure for every 10th candidate, path reuse for every
    4th from 1, a copy for fold 4."""
    ids = dict(search.candidates.values_list("index", "pk"))
    now = timezone.now()
    return [
        Result(search=search, candidate_id=ids[c], fold=f, test_scores={"score": c / 100}, fit_time=0.01,
               score_time=0.001, started_at=now, finished_at=now, host="writer", pid=1, n_test_samples=10,
               error="boom" if c % 10 == 0 else "", path_reused=c % 4 == 1, reused=f == 4)
        for c, f in cells
    ]  # fmt: skip


def _vm_steps(action: Any) -> int:
    """SQLite virtual-machine instructions `action` makes the database run (its work, not its wall time)."""
    connection.ensure_connection()
    raw = connection.connection
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    raw.set_progress_handler(tick, 10)
    try:
        action()
    finally:
        raw.set_progress_handler(None, 10)
    return ticks[0] * 10


@pytest.mark.django_db
def test_a_write_of_fits_costs_the_same_however_many_the_search_already_holds() -> None:
    """Each flush moves the progress counters by what it inserted; it does not recount the search's fits."""
    alphas = [float(a) for a in range(1, 2001)]
    search = create_search({"estimator": "Ridge", "param_grid": {"alpha": alphas}, "dataset": "diabetes"})
    Result.objects.bulk_create(_fits(search, [(c, f) for c in range(1, 21) for f in range(5)]))
    batch = _fits(search, [(1991, f) for f in range(5)])
    few = _vm_steps(lambda: results_insert(search_id=search.pk, rows=batch))
    Result.objects.bulk_create(_fits(search, [(c, f) for c in range(21, 1990) for f in range(5)]), batch_size=2000)
    batch = _fits(search, [(1993, f) for f in range(5)])
    many = _vm_steps(lambda: results_insert(search_id=search.pk, rows=batch))
    assert Result.objects.filter(search=search).count() == 9_955
    assert many < 1.5 * few, (few, many)  # 100 vs 9,945 fits stored before the write
    search.refresh_from_db()
    assert (search.n_fits_done, search.n_fits_failed, search.fits_saved, search.fits_reused) == (10, 0, 5, 2)


@pytest.mark.django_db(transaction=True)
def test_writers_racing_on_the_same_fits_count_each_fit_once() -> None:
    spec = {"estimator": "Ridge", "param_grid": {"alpha": [float(a) for a in range(1, 61)]}, "dataset": "diabetes"}
    search = create_search(spec)
    slices = [((i * 10) % 60, min((i * 10) % 60 + 20, 60)) for i in range(WRITERS)]  # most cells written twice
    start = threading.Barrier(WRITERS)
    inserted: list[int] = []
    errors: list[BaseException] = []

    def write(a: int, b: int) -> None:
        try:
            cells = [(c, f) for c in range(a, b) for f in range(5)]
            start.wait(30)
            for i in range(0, len(cells), 7):  # batches of 7, each with a duplicate of its first cell
                batch = cells[i : i + 7]
                inserted.append(results_insert(search_id=search.pk, rows=_fits(search, [*batch, batch[0]])))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=s) for s in slices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert Result.objects.filter(search=search).count() == 300 == sum(inserted)
    search.refresh_from_db()
    # 6 failed candidates x 5 folds; 15 candidates (1, 5, …, 57) x 5 path-reused; fold 4 of 60 copied
    assert (search.n_fits_done, search.n_fits_failed, search.fits_saved, search.fits_reused) == (300, 30, 75, 60)

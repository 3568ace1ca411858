"""Fits dispatched in batches (engine.schedule.batch_sizes): each batch's results are stored once, and a runner
killed between batches resumes with only the fits no batch delivered."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from search.models import Result, Status
from search.services.units import unit_run
from tests.conftest import create_search, run_inline
from tests.services.test_units import _run_in_thread, _wait_for

BATCHED = {
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0, "n_estimators": 15},
    "param_grid": {"max_depth": list(range(2, 22))},
    "dataset": {"name": "make_classification", "options": {"n_samples": 1500, "n_features": 20}},
    "cv": 3,
}  # 60 fits of ~0.05-0.1 s: batches of 6 take ~0.5 s each


def stored(search: Any) -> list[tuple[int, int, int]]:
    return sorted(Result.objects.filter(search=search).values_list("candidate__index", "fold", "attempt"))


@pytest.mark.django_db
def test_batched_fits_are_each_stored_once(settings: Any) -> None:
    settings.FANOUT_FIT_BATCH = 7  # 60 fits in 9 dispatches, the last one short
    search = run_inline(create_search(BATCHED))
    assert search.status == Status.DONE
    cells = [(c, f) for c, f, _ in stored(search)]
    assert cells == sorted({(c, f) for c in range(20) for f in range(3)})  # every cell, none twice
    unit = search.units.get(kind="cv")
    assert unit.fits_run == 60 and unit.processes_used == min(os.cpu_count() or 1, unit.n_jobs_effective or 1)


@pytest.mark.django_db(transaction=True)
def test_a_runner_killed_between_batches_resumes_with_the_rest(settings: Any) -> None:
    settings.FANOUT_FIT_BATCH = 6
    search = create_search(BATCHED)
    unit = search.units.get(kind="cv")
    thread, outcome = _run_in_thread(unit.pk)
    _wait_for(lambda: Result.objects.filter(search=search).count() >= 6)
    unit.refresh_from_db()
    assert unit.runner_pid is not None
    os.kill(unit.runner_pid, signal.SIGKILL)
    thread.join(timeout=60)
    assert outcome == ["requeued"]
    survivors = dict(Result.objects.filter(search=search).values_list("pk", "finished_at"))
    assert 6 <= len(survivors) < 60 and len(survivors) % 6 == 0  # whole batches only
    assert unit_run(unit_id=unit.pk) == "done"
    unit.refresh_from_db()
    assert unit.attempt == 2 and unit.fits_run == 60 - len(survivors)  # nothing delivered is fitted again
    rows = stored(search)
    assert len(rows) == 60 and len({(c, f) for c, f, _ in rows}) == 60
    assert dict(Result.objects.filter(pk__in=survivors).values_list("pk", "finished_at")) == survivors
    assert {a for _, _, a in rows} == {1, 2}

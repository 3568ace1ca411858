"""A worker keeps the runner of a cleanly finished unit for its next unit (pool and imports warm), and
kills it after anything else. Real runner processes; the worker here is the test process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import joblib
import pytest

from search.models import Result, Status
from search.services import runners
from tests.conftest import create_search, run_inline
from tests.services.test_units import SMALL, alive, break_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker() -> Iterator[None]:
    """This process acts as a django-q2 worker: it keeps a spare runner, as `post_spawn` makes it do."""
    runners.keep_warm_runner()
    yield
    spare, runners._spare = runners._spare, None
    runners._keep_spare = False
    if spare is not None:
        runners.kill_group(spare.proc)


def test_consecutive_units_reuse_one_runner_and_still_use_every_core(worker: None, settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 3  # SMALL has 3 candidates x 3 folds: three units
    search = run_inline(create_search(SMALL))
    assert search.status == Status.DONE
    units = list(search.units.order_by("index"))
    assert len(units) == 3
    assert len({u.runner_pid for u in units}) == 1  # one runner for all three units
    runner_pid = units[0].runner_pid
    assert runner_pid is not None and alive(runner_pid)  # kept as the spare for the next unit
    cores = joblib.cpu_count()  # what the runner is granted (CPU affinity and quotas included)
    for unit in units:  # every unit still fits in the pool's processes, never in the worker
        # one candidate x 3 folds per unit: 3 tasks, so at most 3 processes whatever the machine has
        assert unit.n_jobs_effective == cores and unit.processes_used == min(cores, 3)
        assert os.getpid() not in unit.worker_pids
        assert unit.threads["processes"], unit.threads  # each unit records the thread pools it ran with
    assert Result.objects.filter(search=search).count() == 9


def test_a_failed_unit_does_not_hand_its_runner_on(worker: None) -> None:
    broken = create_search(SMALL)
    break_dataset(broken)
    run_inline(broken)
    failed_runner = broken.units.get().runner_pid
    assert broken.status == Status.FAILED and failed_runner is not None
    assert not alive(failed_runner)  # an error ends the runner's group
    good = run_inline(create_search({**SMALL, "dataset": "wine"}))  # iris above was broken on purpose
    assert good.status == Status.DONE and good.units.get().runner_pid != failed_runner

"""Many processes streaming results into the embedded SQLite database at once: no "database is locked"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from project.cluster import ROOT
from search.models import Result, Search
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

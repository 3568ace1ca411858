"""`python -m tests.system.sqlite_writer UNIT_ID START STOP MODE`: write fits of candidates [START, STOP) one by
one, as a worker streaming results would; prints how many writes raised.

MODE `stream` is our own write path; `read-then-write` wraps it in a transaction that reads first, the
pattern of django-q2's monitor (docs/traps.md, SQLite locking) that fails under SQLite's default DEFERRED
transactions."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    django.setup()
    from django.db import OperationalError, transaction

    from search.models import Result, WorkUnit
    from search.services.units import results_write

    unit_id, start, stop = (int(a) for a in sys.argv[1:4])
    read_first = sys.argv[4] == "read-then-write"
    unit = WorkUnit.objects.select_related("search").get(pk=unit_id)
    errors = 0
    for cand in range(start, stop):
        for fold in range(unit.search.n_splits):
            now = time.time()
            fit = {
                "candidate": cand, "fold": fold, "test_scores": {"score": cand / 100}, "train_scores": None,
                "fit_time": 0.01, "score_time": 0.001, "started_at": now, "finished_at": now,
                "host": "writer", "pid": os.getpid(), "n_test_samples": 10, "error": "",
            }  # fmt: skip
            try:
                with transaction.atomic():
                    if read_first:
                        Result.objects.filter(search_id=unit.search_id).count()
                    results_write(unit=unit, fits=[fit])
            except OperationalError as exc:
                errors += 1
                print(f"error: {exc}", file=sys.stderr)
    print(errors)


if __name__ == "__main__":
    main()

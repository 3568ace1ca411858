"""Reuse across searches: a unit copies stored identical fits instead of recomputing them.

Two fits with the same `fit_key` (see `search.engine.reuse`) compute the same scores; only fits that
repeat have one (every `random_state` pinned, a seeded split). Before a unit runs, every pending cell
whose key matches a stored successful fit of the same owner (another of their searches, or an earlier
attempt) gets a new `Result` row with the original's scores, times, host and pid, and
`reused_from` pointing at the fit that was really computed. Only the other cells go to the runner.
The copies go through the same unique (candidate, fold) constraint as every other write, so a
duplicate delivery still stores each fit once. Off with FANOUT_REUSE_FITS=0; never for the runs of
a scaling study (they exist to measure fitting).

Reuse never crosses owners: a copy shows the original's hosts, pids and times, and that someone ran the
same data. Searches without an owner (the CLI's) are one scope of their own.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from search.engine.reuse import fit_keys
from search.engine.run import Job
from search.models import Candidate, Result, WorkUnit
from search.services.finalize import results_insert

Cell = tuple[int, int, dict[str, Any]]
LOOKUP_BATCH = 500  # keys per query: far below SQLite's and PostgreSQL's parameter limits


def reuse_enabled(unit: WorkUnit) -> bool:
    return bool(settings.FANOUT_REUSE_FITS) and unit.search.study_id is None


def results_reuse(*, unit: WorkUnit, job: Job) -> list[Cell]:
    """Store copies of identical earlier fits for `job.cells`; return the cells still to be fitted."""
    keys = fit_keys(job.to_dict())
    if not keys:
        return list(job.cells)
    wanted = sorted(set(keys.values()))
    owner_id = unit.search.owner_id
    scope = (
        Result.objects.filter(search__owner__isnull=True)
        if owner_id is None
        else Result.objects.filter(search__owner_id=owner_id)
    )  # this owner's fits only
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        stored = (
            scope.filter(fit_key__in=wanted[start : start + LOOKUP_BATCH], error="")  # never a failed fit
            .order_by("pk")
            .values("pk", "reused_from_id", "fit_key", "test_scores", "train_scores", "fit_time", "score_time",
                    "host", "pid", "n_test_samples")
        )  # fmt: skip
        for row in stored:
            found.setdefault(row["fit_key"], dict(row))  # the oldest row of each key
    hits = [(cand, fold) for cand, fold, _ in job.cells if (cand, fold) in keys and keys[(cand, fold)] in found]
    if hits:
        _copy(unit, hits, keys, found)
    done = set(hits)
    return [cell for cell in job.cells if (cell[0], cell[1]) not in done]


def _copy(
    unit: WorkUnit, hits: list[tuple[int, int]], keys: dict[tuple[int, int], str], found: dict[str, dict[str, Any]]
) -> None:
    ids = dict(
        Candidate.objects.filter(search_id=unit.search_id, index__in={c for c, _ in hits}).values_list("index", "pk")
    )
    now = timezone.now()  # when the copy was made: copies take no place on this search's timeline
    rows = []
    for cand, fold in hits:
        original = found[keys[(cand, fold)]]
        rows.append(
            Result(
                search_id=unit.search_id, candidate_id=ids[cand], fold=fold, unit=unit, attempt=unit.attempt,
                test_scores=original["test_scores"], train_scores=original["train_scores"],
                fit_time=original["fit_time"], score_time=original["score_time"], started_at=now, finished_at=now,
                host=original["host"], pid=original["pid"], n_test_samples=original["n_test_samples"],
                fit_key=keys[(cand, fold)], reused_from_id=original["reused_from_id"] or original["pk"], reused=True,
            )
        )  # fmt: skip
    results_insert(search_id=unit.search_id, rows=rows)

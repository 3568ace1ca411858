"""Scaling studies: the same search (or its first candidates) measured at 1, 2, … processes.

Each run is an ordinary search with `n_jobs` fixed, stored and exported like any other. Runs go one
after another (the next is enqueued when the previous finishes) so they never share the cores. The
speedup of a run is the 1-process run's wall time over its own (wall = first fit start → last fit
end); Amdahl's law is fitted to those measured points (see engine.speedup).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import joblib
from django.db import transaction
from django.utils import timezone

from search import services
from search.engine import speedup
from search.models import ScalingStudy, Search, Status

TARGET_FITS = 100  # a study run covers about this many fits: enough to measure, quick to repeat


def default_n_jobs(search: Search) -> list[int]:
    cores = max([u for u in search.units.values_list("cpu_count", flat=True) if u] or [joblib.cpu_count()])
    return list(range(1, cores + 1))


def study_create(
    *, search: Search, n_jobs_list: list[int] | None = None, n_candidates: int | None = None, enqueue: bool = True
) -> ScalingStudy:
    """Store one run per process count (a prefix of the grid: `n_candidates`), enqueue the first."""
    counts = sorted(set(n_jobs_list or default_n_jobs(search)))
    if not counts or counts[0] < 1:
        raise ValueError("process counts must be positive integers")
    if 1 not in counts:
        counts.insert(0, 1)  # speedups are measured against one process
    k = n_candidates or max(1, min(search.n_candidates, math.ceil(TARGET_FITS / search.n_splits)))
    raw = dict(search.spec)
    if "dataset_id" in raw["dataset"]:
        raw["dataset"] = {"csv": services.dataset_local_path(search.dataset), "target": raw["dataset"]["target"]}
    plan = services.plan_search(raw)
    plan = replace(plan, candidates=plan.candidates[:k])
    with transaction.atomic():
        study = ScalingStudy.objects.create(search=search, owner=search.owner, n_jobs_list=counts, n_candidates=k)
        for n in counts:
            spec = replace(plan.spec, n_jobs=n, name=f"scaling {n} proc: {search.name or search.pk}"[:200])
            services.search_create(plan=replace(plan, spec=spec), owner=search.owner, enqueue=False, study=study)
        if enqueue:
            study_id = study.pk
            transaction.on_commit(lambda: study_advance(study_id=study_id))
    return study


def _runs(study: ScalingStudy) -> list[Search]:
    return list(study.runs.order_by("study_n_jobs", "pk"))


def study_advance(*, study_id: int) -> ScalingStudy:
    """Enqueue the next queued run, or conclude the study when every run has finished."""
    study = ScalingStudy.objects.get(pk=study_id)
    if study.status in (Status.DONE, Status.FAILED, Status.CANCELLED):
        return study
    runs = _runs(study)
    bad = [r for r in runs if r.status in (Status.FAILED, Status.CANCELLED)]
    if bad:
        ScalingStudy.objects.filter(pk=study_id).update(
            status=Status.FAILED, error=f"run {bad[0].pk} ({bad[0].study_n_jobs} processes) {bad[0].status}: "
            f"{bad[0].error}", finished_at=timezone.now(),
        )  # fmt: skip
    elif any(r.status == Status.RUNNING for r in runs):
        pass  # the running one advances the study when it finishes
    elif queued := [r for r in runs if r.status == Status.QUEUED]:
        ScalingStudy.objects.filter(pk=study_id).update(status=Status.RUNNING)
        nxt = queued[0]
        if not nxt.units.exclude(q_task_id="").exists():
            services.search_enqueue(search_id=nxt.pk)
    else:
        points = study_points(study)
        ScalingStudy.objects.filter(pk=study_id).update(
            status=Status.DONE, serial_fraction=speedup.fit_serial_fraction(points), finished_at=timezone.now()
        )
    study.refresh_from_db()
    return study


def study_points(study: ScalingStudy) -> list[tuple[int, float]]:
    """(processes, measured speedup over the 1-process run) for every finished run."""
    walls = {
        r.study_n_jobs: (r.accounting or {}).get("wall")
        for r in _runs(study)
        if r.status == Status.DONE and r.study_n_jobs
    }
    base = walls.get(1)
    if not base:
        return []
    return [(n, base / wall) for n, wall in sorted(walls.items()) if n and wall]


def study_table(study: ScalingStudy) -> dict[str, Any]:
    """Everything the page and the CLI show: runs, measured speedups, Amdahl fit and projections."""
    points = dict(study_points(study))
    cores = max(study.n_jobs_list)
    rows = [
        {
            "search": r.pk,
            "processes": r.study_n_jobs,
            "status": r.status,
            "wall": (r.accounting or {}).get("wall"),
            "speedup": points.get(r.study_n_jobs or 0),
            "efficiency": points[r.study_n_jobs] / r.study_n_jobs if r.study_n_jobs in points else None,
        }
        for r in _runs(study)
    ]
    s = study.serial_fraction
    return {
        "study": study.pk, "status": study.status, "n_candidates": study.n_candidates, "rows": rows,
        "serial_fraction": s, "error": study.error,
        "projections": {str(n): v for n, v in speedup.projections(s, cores).items()} if s is not None else {},
    }  # fmt: skip

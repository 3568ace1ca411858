"""Scaling studies: the same search (or its first candidates) measured at 1, 2, … processes or machines.

Each run is an ordinary search, stored and exported like any other. Runs go one after another (the
next is enqueued when the previous finishes) so they never share the cores. The speedup of a run is
the first run's wall time over its own (wall = first fit start → last fit end); Amdahl's law is fitted
to those measured points (see engine.speedup).

Two axes:
- `processes`: one machine, `n_jobs` fixed at 1, 2, … cores.
- `machines`: `n_jobs=-1` (every core of a machine) at 1, 2, … M machines, M = the clusters attached
  now. A run is limited to k machines by `Search.max_machines`: the broker hands its units to any
  cluster as usual, and a cluster beyond the first k declines them (see `search.services.machines`).

The representative subset is the grid's first `ceil(TARGET_FITS / folds)` candidates (all of them for a
small search), in `ParameterGrid` order, with every fold."""

from __future__ import annotations

import math
from dataclasses import replace

from django.db import transaction
from django.utils import timezone

from search.engine import speedup
from search.models import ScalingStudy, Search, Status
from search.selectors.cluster import live_clusters
from search.selectors.studies import AXES, default_n_jobs, run_width, study_points, study_runs
from search.services.searches import plan_search, search_create, search_enqueue

TARGET_FITS = 100  # a study run covers about this many fits: enough to measure, quick to repeat


def _widths(axis: str, search: Search, n_jobs_list: list[int] | None, n_machines_list: list[int] | None) -> list[int]:
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}; got {axis!r}")
    if axis == "processes":
        counts = sorted(set(n_jobs_list or default_n_jobs(search)))
    else:
        live = live_clusters()
        counts = sorted(set(n_machines_list or range(1, live + 1)))
        if live < 2 or (counts and counts[-1] > live):
            raise ValueError(f"a study over machines needs that many clusters attached; {live} reporting now")
    if not counts or counts[0] < 1:
        raise ValueError(f"{axis} counts must be positive integers")
    if 1 not in counts:
        counts.insert(0, 1)  # speedups are measured against one process (machine)
    return counts


def study_create(
    *,
    search: Search,
    axis: str = "processes",
    n_jobs_list: list[int] | None = None,
    n_machines_list: list[int] | None = None,
    n_candidates: int | None = None,
    enqueue: bool = True,
) -> ScalingStudy:
    """Store one run per process (or machine) count on a prefix of the grid (`n_candidates`); enqueue
    the first. Raises ValueError for an unknown axis, bad counts, or too few machines attached."""
    counts = _widths(axis, search, n_jobs_list, n_machines_list)
    k = n_candidates or max(1, min(search.n_candidates, math.ceil(TARGET_FITS / search.n_splits)))
    raw = search.spec_to_replan()
    if raw.get("strategy") == "halving" and "param_distributions" in raw:
        raw["halving"] = {**raw["halving"], "n_candidates": k}  # a sample of k candidates, not "exhaust"
    plan = plan_search(raw)
    plan = replace(plan, candidates=plan.candidates[:k])
    machines = axis == "machines"
    with transaction.atomic():
        study = ScalingStudy.objects.create(
            search=search, owner=search.owner, n_candidates=k, axis=axis,
            n_jobs_list=[-1] if machines else counts, n_machines_list=counts if machines else [],
        )  # fmt: skip
        for n in counts:
            label = f"{n} machine{'s' if n > 1 else ''}" if machines else f"{n} proc"
            # A run measures the fits; it keeps no model (its search has one), so it is not refitted.
            spec = replace(
                plan.spec,
                n_jobs=-1 if machines else n,
                name=f"scaling {label}: {search.name or search.pk}"[:200],
                refit=False,
            )
            search_create(
                plan=replace(plan, spec=spec), owner=search.owner, enqueue=False, study=study,
                max_machines=n if machines else None,
            )  # fmt: skip
        if enqueue:
            study_id = study.pk
            transaction.on_commit(lambda: study_advance(study_id=study_id))
    return study


def study_advance(*, study_id: int) -> ScalingStudy:
    """Enqueue the next queued run, or conclude the study when every run has finished."""
    study = ScalingStudy.objects.get(pk=study_id)
    if study.status in Status.FINISHED:
        return study
    runs = study_runs(study)
    bad = [r for r in runs if r.status in (Status.FAILED, Status.CANCELLED)]
    if bad:
        ScalingStudy.objects.filter(pk=study_id).update(
            status=Status.FAILED, error=f"run {bad[0].pk} ({run_width(study, bad[0])} {study.axis}) {bad[0].status}: "
            f"{bad[0].error}", finished_at=timezone.now(),
        )  # fmt: skip
    elif any(r.status == Status.RUNNING for r in runs):
        pass  # the running one advances the study when it finishes
    elif queued := [r for r in runs if r.status == Status.QUEUED]:
        ScalingStudy.objects.filter(pk=study_id).update(status=Status.RUNNING)
        nxt = queued[0]
        if not nxt.units.exclude(q_task_id="").exists():
            search_enqueue(search_id=nxt.pk)
    else:
        points = study_points(study)
        ScalingStudy.objects.filter(pk=study_id).update(
            status=Status.DONE, serial_fraction=speedup.fit_serial_fraction(points), finished_at=timezone.now()
        )
    study.refresh_from_db()
    return study

"""Estimate a search before it runs: fits, CPU time and wall time, from past fits of the same estimator.

Past fits are weighted by the same relative cost that orders dispatch (engine.cost), so a grid of
larger models is estimated larger than the history's average: seconds per unit of relative cost ×
the new grid's total cost. The same data set is preferred; another one is scaled by its row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import joblib

from search.engine import datasets
from search.engine.cost import relative_cost
from search.engine.spec import Plan
from search.models import Dataset, Result, Search, Status

HISTORY = 2000  # most recent fits looked at
DEFAULT_EFFICIENCY = 0.9


@dataclass(frozen=True)
class Estimate:
    fits: int
    processes: int
    cpu_seconds: float | None
    wall_seconds: float | None
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        if self.cpu_seconds is None or self.wall_seconds is None:
            return f"{self.fits} fits; {self.basis}"
        return (
            f"{self.fits} fits, about {_duration(self.cpu_seconds)} of CPU, {_duration(self.wall_seconds)} on "
            f"{self.processes} processes ({self.basis})"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _history(estimator: str, dataset_key: str | None, owner: Any) -> tuple[float, int, float] | None:
    """(seconds per unit of relative cost, fits seen, rows of their data) from finished searches."""
    qs = Result.objects.filter(search__estimator=estimator, search__status=Status.DONE, error="")
    if owner is not None and getattr(owner, "pk", None):
        qs = qs.filter(search__owner=owner)
    if dataset_key is not None:
        qs = qs.filter(search__dataset__key=dataset_key)
    rows = list(
        qs.order_by("-pk").values_list("fit_time", "score_time", "candidate__params", "search__dataset__n_samples")[
            :HISTORY
        ]
    )
    if not rows:
        return None
    seconds = sum(f + s for f, s, _, _ in rows)
    cost = sum(relative_cost(p) for _, _, p, _ in rows)
    return seconds / cost, len(rows), sum(n for *_, n in rows) / len(rows)


def _efficiency(estimator: str) -> float:
    past = [
        e
        for e in Search.objects.filter(estimator=estimator, status=Status.DONE, efficiency__isnull=False)
        .order_by("-pk")
        .values_list("efficiency", flat=True)[:10]
        if e is not None
    ]
    return min(1.0, sum(past) / len(past)) if past else DEFAULT_EFFICIENCY


def search_estimate(*, plan: Plan, dataset: Dataset | None, n_samples: int, owner: Any = None) -> Estimate:
    """What the search will cost; `basis` says where the numbers come from (or why there are none)."""
    estimator = plan.spec.estimator_label
    cores = joblib.cpu_count()
    processes = min(joblib.effective_n_jobs(plan.spec.n_jobs), plan.n_fits)
    key = dataset.key if dataset is not None else None
    same = _history(estimator, key, owner) if key else None
    found = same or _history(estimator, None, owner)
    if found is None:
        return Estimate(plan.n_fits, processes, None, None, f"no past fits of {estimator} to estimate from yet")
    per_cost, seen, rows = found
    scale = 1.0 if same else n_samples / max(rows, 1.0)
    cpu = per_cost * scale * plan.spec.cv.n_splits * sum(relative_cost(c) for c in plan.candidates)
    wall = cpu / max(1, min(processes, cores)) / _efficiency(estimator)
    where = "this data set" if same else f"other data sets, scaled to {n_samples} rows"
    return Estimate(plan.n_fits, processes, cpu, wall, f"from {seen} past fits of {estimator} on {where}")


def estimate_plan(*, plan: Plan, owner: Any = None) -> Estimate:
    """The estimate for a spec that is not stored yet: nothing is created, large data is not built."""
    from search import services

    ds = plan.spec.dataset
    dataset = None
    if ds.csv is None:
        dataset = Dataset.objects.filter(key=services.dataset_key(ds), owner=owner).first()
    n_samples = dataset.n_samples if dataset else int(ds.options.get("n_samples", 100) if ds.options else 0)
    if not n_samples and ds.name in datasets.BUILTIN:
        n_samples = datasets.load_builtin(ds.name).n_samples
    return search_estimate(plan=plan, dataset=dataset, n_samples=n_samples, owner=owner)

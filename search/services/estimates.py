"""Estimate a search before it runs: fits, CPU time and wall time, from past fits or from a short pilot.

Past fits are weighted by the same relative cost that orders dispatch (engine.cost), so a grid of
larger models is estimated larger than the history's average: seconds per unit of relative cost ×
the new grid's total cost. The same data set is preferred; another one is scaled by its row count.

With no past fits of the estimator, a pilot times a few real fits of the planned search (its most
expensive and its cheapest candidate, first fold) in the isolated runner process, within
FANOUT_PILOT_SECONDS (0 turns pilots off); its seconds per unit of cost are extrapolated the same way
(engine.pilot). The budget counts from the runner's start (once the interpreter is up); a pilot cut off
by it is killed and gives a lower bound ("at least"). Pilot results are cached for PILOT_CACHE_SECONDS
per (estimator, fixed parameters, data set, folds), so the form's live estimate does not start a runner
on every keystroke.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
from django.conf import settings
from django.core.cache import cache

from search.engine import datasets, halving, pilot, registry
from search.engine.cost import relative_cost
from search.engine.run import Job
from search.engine.validate import DataPlan, Plan, classes_of, needs_data_to_sample, sampled_for_data
from search.models import Dataset, Result, Search, Status
from search.services.datasets import dataset_key
from search.services.runners import spawn_runner
from search.services.searches import data_for_check

HISTORY = 2000  # most recent fits looked at
DEFAULT_EFFICIENCY = 0.9
PILOT_CACHE_SECONDS = 600


@dataclass(frozen=True)
class Estimate:
    fits: int
    processes: int
    cpu_seconds: float | None
    wall_seconds: float | None
    basis: str
    source: str = "none"  # "history" (past fits), "pilot", or "none"
    lower_bound: bool = False  # the pilot was cut off: the true times are at least these

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        if self.cpu_seconds is None or self.wall_seconds is None:
            return f"{self.fits} fits; {self.basis}"
        about = "at least" if self.lower_bound else "about"
        return (
            f"{self.fits} fits, {about} {_duration(self.cpu_seconds)} of CPU, {_duration(self.wall_seconds)} on "
            f"{self.processes} processes ({self.basis})"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _history(estimator: str, dataset_key: str | None, owner: Any) -> tuple[float, int, float] | None:
    """(seconds per unit of relative cost, fits seen, rows of their data) from finished searches."""
    # Only fits computed from scratch: a copy repeats its original, a path-reused fit timed only the trees it added.
    qs = Result.objects.filter(
        search__estimator=estimator, search__status=Status.DONE, error="", reused=False, path_reused=False
    )
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


def search_size(
    plan: Plan, *, n_samples: int, n_classes: int | None, schedule: halving.Schedule | None = None
) -> pilot.SearchCost:
    """Fits and relative cost of the whole search: every halving round (its schedule for this data set's size),
    and path-reuse chains costing their largest fit when FANOUT_PATH_REUSE is on. `schedule`: the halving
    rounds when the caller has them (`DataPlan.schedule`); without, they are computed here from `n_samples`."""
    hs = plan.spec.halving
    budget_default = None
    if hs is not None and schedule is None:
        try:
            schedule = halving.schedule(
                hs, n_candidates=plan.n_candidates, n_samples=n_samples, n_splits=plan.spec.cv.n_splits,
                n_classes=n_classes,
            )  # fmt: skip
        except halving.ScheduleError:
            schedule = None  # reported when the search is created; estimate the first round only
    if hs is not None and hs.resource != "n_samples":
        fixed = {**registry.build(plan.steps).get_params(), **plan.spec.params}
        budget_default = fixed.get(hs.resource)
    return pilot.search_cost(
        steps=plan.steps, params=dict(plan.spec.params), candidates=plan.candidates, n_splits=plan.spec.cv.n_splits,
        n_samples=n_samples, path_reuse=bool(settings.FANOUT_PATH_REUSE), hs=hs, schedule=schedule,
        budget_default=budget_default,
    )  # fmt: skip


def _size_note(size: pilot.SearchCost) -> str:
    return f"; {size.path_reused} of them grown from a smaller model (path reuse)" if size.path_reused else ""


def search_estimate(
    *,
    plan: Plan,
    dataset: Dataset | None,
    n_samples: int,
    owner: Any = None,
    data_key: str | None = None,
    n_classes: int | None = None,
    schedule: halving.Schedule | None = None,
) -> Estimate:
    """What the search will cost; `basis` says where the numbers come from (or why there are none).
    `data_key` identifies the data for caching a pilot when there is no stored Dataset row yet; `schedule`:
    the halving rounds when the caller has them (see `search_size`)."""
    estimator = plan.spec.estimator_label
    size = search_size(plan, n_samples=n_samples, n_classes=n_classes, schedule=schedule)
    processes = min(joblib.effective_n_jobs(plan.spec.n_jobs), size.fits)
    width = max(1, min(processes, joblib.cpu_count()))
    key = dataset.key if dataset is not None else None
    same = _history(estimator, key, owner) if key else None
    found = same or _history(estimator, None, owner)
    if found is None:
        return _pilot_estimate(plan, key or data_key, processes, width, size)
    per_cost, seen, rows = found
    scale = 1.0 if same else n_samples / max(rows, 1.0)
    cpu, wall = pilot.extrapolate(
        per_cost=per_cost * scale, candidates=plan.candidates, n_splits=plan.spec.cv.n_splits, processes=width,
        efficiency=_efficiency(estimator), cost=size.cost,
    )  # fmt: skip
    where = "this data set" if same else f"other data sets, scaled to {n_samples} rows"
    basis = f"from {seen} past fits of {estimator} on {where}{_size_note(size)}"
    return Estimate(size.fits, processes, cpu, wall, basis, "history")


def _data_source(plan: Plan) -> dict[str, Any] | None:
    """The runner's description of the spec's data (None for a CSV file that is not here)."""
    ds = plan.spec.dataset
    if ds.csv is not None:
        return {"kind": "csv", "path": ds.csv, "target": ds.target} if Path(ds.csv).is_file() else None
    kind = Dataset.Kind.BUILTIN if ds.name in datasets.BUILTIN else Dataset.Kind.GENERATOR
    return {"kind": str(kind), "name": ds.name, "options": dict(ds.options)}


def pilot_run(*, plan: Plan, source: dict[str, Any], budget: float) -> pilot.PilotResult:
    """Time `plan`'s most expensive and cheapest candidates (first fold) in a runner, within `budget` s."""
    spec = plan.spec.to_dict()
    cells = pilot.pilot_cells(plan.candidates)
    job = Job(
        steps=[(name, module) for name, module in plan.steps], params=dict(plan.spec.params), data=source,
        cv=spec["cv"], scoring=spec.get("scoring"), n_jobs=1, return_train_score=plan.spec.return_train_score,
        cells=cells, cluster_workers=joblib.cpu_count(),  # one BLAS thread per fit, as in a search on every core
        path_reuse=False,  # each pilot fit timed from scratch (a grown one would time only what it added)
    )  # fmt: skip
    proc = spawn_runner(job)
    return pilot.watch(proc, {i: relative_cost(p) for i, _, p in cells}, budget)


def _pilot_estimate(plan: Plan, data_key: str | None, processes: int, width: int, size: pilot.SearchCost) -> Estimate:
    estimator = plan.spec.estimator_label
    budget = float(settings.FANOUT_PILOT_SECONDS)
    source = _data_source(plan)
    if budget <= 0 or source is None or not plan.candidates:
        return Estimate(size.fits, processes, None, None, f"no past fits of {estimator} to estimate from yet")
    spec = plan.spec.to_dict()
    ident = [estimator, spec.get("params"), data_key or source, spec["cv"], spec.get("scoring")]
    cache_key = "fanout-pilot:" + hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    found = cache.get(cache_key)
    if found is None:
        result = pilot_run(plan=plan, source=source, budget=budget)
        found = {
            "per_cost": result.per_cost, "lower_bound": result.lower_bound, "per_fit": result.seconds_per_fit(),
            "fits": sum(f.finished for f in result.fits), "error": result.error,
        }  # fmt: skip
        cache.set(cache_key, found, PILOT_CACHE_SECONDS)
    if found["per_cost"] is None:
        why = found["error"].splitlines()[0] if found["error"] else f"no fit started within {budget:g} s"
        return Estimate(size.fits, processes, None, None, f"no past fits of {estimator}; the pilot failed: {why}")
    cpu, wall = pilot.extrapolate(
        per_cost=found["per_cost"], candidates=plan.candidates, n_splits=plan.spec.cv.n_splits, processes=width,
        efficiency=_efficiency(estimator), cost=size.cost,
    )  # fmt: skip
    if found["lower_bound"]:
        basis = f"pilot stopped after {budget:g} s: at least {found['per_fit']:.1f} s per fit"
    else:
        basis = f"from a pilot of {found['fits']} fits of {estimator}, {found['per_fit']:.2f} s per fit"
    return Estimate(size.fits, processes, cpu, wall, basis + _size_note(size), "pilot", bool(found["lower_bound"]))


def estimate_plan(*, plan: Plan, owner: Any = None, data_plan: DataPlan | None = None) -> Estimate:
    """The estimate for a spec that is not stored yet: nothing is created, large data is not built.
    `data_plan`: `plan` checked against its data when the caller has read it already
    (services.searches.plan_check_data); its candidates, schedule, rows and classes are used as they are."""
    ds = plan.spec.dataset
    dataset = None
    if ds.csv is None:
        dataset = Dataset.objects.filter(key=dataset_key(ds), owner=owner).first()
    classification = plan.task == "classification"
    n_classes: int | None = None
    schedule: halving.Schedule | None = None
    if data_plan is not None:
        plan, schedule = data_plan.plan, data_plan.schedule
        n_samples, n_classes = data_plan.n_samples, data_plan.n_classes
    elif ds.name in datasets.BUILTIN:  # small and bundled: read as the search will
        data = data_for_check(ds)
        assert data is not None
        n_samples, n_classes = data.n_samples, classes_of(plan, data)
    elif ds.csv is not None:
        n_samples = _csv_rows(ds.csv)
    else:  # a generator: from its options, without building the data
        n_samples = dataset.n_samples if dataset else int(ds.options.get("n_samples", 100))
        if classification and ds.name == "make_classification":
            n_classes = int(ds.options.get("n_classes", 2))
    key = dataset_key(ds) if ds.csv is None else _file_key(ds.csv)
    note = ""
    if data_plan is None and needs_data_to_sample(plan.spec):  # halving over n_candidates="exhaust" sampling
        if n_samples and (n_classes or not classification):  # draw them as the search will
            plan = sampled_for_data(plan, n_samples=n_samples, n_classes=n_classes)
        else:
            n = plan.n_candidates
            note = f"; 'exhaust' draws its candidates from the data set's size at launch, this is for {n}"
    found = search_estimate(
        plan=plan,
        dataset=dataset,
        n_samples=n_samples,
        owner=owner,
        data_key=key,
        n_classes=n_classes,
        schedule=schedule,
    )
    return replace(found, basis=found.basis + note) if note else found


def _csv_rows(path: str) -> int:
    """Data rows of a CSV file (lines after the header), counted without parsing; 0 if it cannot be read, is
    not a regular file (a FIFO or /dev/zero would never end) or is over the upload limit (refused anyway)."""
    file = Path(path)
    try:
        if not file.is_file() or file.stat().st_size > settings.FANOUT_MAX_UPLOAD_MB * 1024 * 1024:
            return 0
        lines, last = 0, b"\n"
        with file.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    except OSError:
        return 0
    return max(0, lines + (last != b"\n") - 1)


def _file_key(path: str) -> str | None:
    """A cheap identity for a CSV file (path, size, modification time): enough to cache a pilot."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return f"{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}"

"""Estimate a search before it runs: fits, CPU time and wall time, from past fits or from a pilot's fits.

Past fits are weighted by the same relative cost that orders dispatch (engine.cost), so a grid of
larger models is estimated larger than the history's average: seconds per unit of relative cost ×
the new grid's total cost. The same data set is preferred; another one is scaled by its row count.

An estimate never fits anything and starts no process: the form asks for one on every change, from the
web process. With no past fits of the estimator, a pilot runs on the cluster once the search is created
(`search_pilot_enqueue` sends the django-q2 task `search.tasks.run_pilot`, after the search's own units,
so it never delays them): it times a few real fits (the most expensive and the cheapest candidate, first
fold) in a runner process, within FANOUT_PILOT_SECONDS (0 turns pilots off), and is stopped when the
search is cancelled. Its seconds per unit of cost are extrapolated the same way (engine.pilot), stored
on the search (`Search.pilot`, shown on its page) and cached for PILOT_CACHE_SECONDS per (estimator, fixed
parameters, data set, folds), where later estimates find it. The budget counts from the runner's start
(once the interpreter is up); a pilot cut off by it is killed and gives a lower bound ("at least").
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
from django.conf import settings
from django.core.cache import cache

from search.engine import datasets, folds, halving, pilot, registry
from search.engine.cost import relative_cost
from search.engine.run import Job
from search.engine.spec import SpecError, parse_spec
from search.engine.validate import DataPlan, Plan, classes_of, needs_data_to_sample, sampled_for_data
from search.models import Dataset, Result, Search, Status, WorkUnit
from search.selectors.datasets import owner_dataset
from search.services.datasets import dataset_key
from search.services.runners import spawn_runner

log = logging.getLogger(__name__)

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
    fields = ("fit_time", "score_time", "candidate__params", "search__dataset__n_samples", "unit__threads")
    rows = list(qs.order_by("-pk").values_list(*fields)[:HISTORY])
    if not rows:
        return None
    # CPU seconds: a fit built in several threads (engine.schedule) took its fit time on each of them, as the
    # search's busy time counts it (selectors.results.search_spans)
    seconds = sum(f * int((t or {}).get("fit_threads") or 1) + s for f, s, _, _, t in rows)
    cost = sum(relative_cost(p) for _, _, p, _, _ in rows)
    return seconds / cost, len(rows), sum(n for _, _, _, n, _ in rows) / len(rows)


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
    processes, width = _widths(plan, size)
    key = dataset.key if dataset is not None else None
    same = _history(estimator, key, owner) if key else None
    found = same or _history(estimator, None, owner)
    if found is None:
        return _without_history(plan, key or data_key, processes, width, size, dataset)
    per_cost, seen, rows = found
    scale = 1.0 if same else n_samples / max(rows, 1.0)
    cpu, wall = pilot.extrapolate(
        per_cost=per_cost * scale, candidates=plan.candidates, n_splits=plan.spec.cv.n_splits, processes=width,
        efficiency=_efficiency(estimator), cost=size.cost,
    )  # fmt: skip
    where = "this data set" if same else f"other data sets, scaled to {n_samples} rows"
    basis = f"from {seen} past fits of {estimator} on {where}{_size_note(size)}"
    return Estimate(size.fits, processes, cpu, wall, basis, "history")


def _data_source(plan: Plan, dataset: Dataset | None = None) -> dict[str, Any] | None:
    """The runner's description of the spec's data (None for a CSV file that is not here, and for a data set
    named by id without its row, `dataset`)."""
    ds = plan.spec.dataset
    if ds.id is not None:
        return dataset.data_source() if dataset is not None else None
    if ds.csv is not None:
        return {"kind": "csv", "path": ds.csv, "target": ds.target} if Path(ds.csv).is_file() else None
    kind = Dataset.Kind.BUILTIN if ds.name in datasets.BUILTIN else Dataset.Kind.GENERATOR
    return {"kind": str(kind), "name": ds.name, "options": dict(ds.options)}


def _widths(plan: Plan, size: pilot.SearchCost) -> tuple[int, int]:
    """(processes the search asks for, at most its fits; processes that run at once on this machine's cores).
    Not joblib.effective_n_jobs: in a daemonic django-q2 worker, where pilots run, it says 1."""
    n_jobs, cores = plan.spec.n_jobs, joblib.cpu_count()
    processes = min(max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs), size.fits)
    return processes, max(1, min(processes, cores))


def pilot_run(
    *, plan: Plan, source: dict[str, Any], budget: float, stop: Callable[[], bool] | None = None
) -> pilot.PilotResult:
    """Time `plan`'s most expensive and cheapest candidates (first fold) in a runner, within `budget` s
    (or until `stop()`). Only the pilot task calls this: never from a web request (docs: estimates)."""
    spec = plan.spec.to_dict()
    cells = pilot.pilot_cells(plan.candidates)
    job = Job(
        steps=[(name, module) for name, module in plan.steps], params=dict(plan.spec.params), data=source,
        cv=spec["cv"], scoring=spec.get("scoring"), n_jobs=1, return_train_score=plan.spec.return_train_score,
        cells=cells, cluster_workers=joblib.cpu_count(),  # one BLAS thread per fit, as in a search on every core
        path_reuse=False,  # each pilot fit timed from scratch (a grown one would time only what it added)
    )  # fmt: skip
    proc = spawn_runner(job)
    return pilot.watch(proc, {i: relative_cost(p) for i, _, p in cells}, budget, stop=stop)


def _pilot_key(plan: Plan, data_key: str | None, source: dict[str, Any]) -> str:
    spec = plan.spec.to_dict()
    cv = folds.cv_identity(spec["cv"])  # explicit splits as their digest
    ident = [plan.spec.estimator_label, spec.get("params"), data_key or source, cv, spec.get("scoring")]
    return "fanout-pilot:" + hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _from_pilot(found: dict[str, Any], plan: Plan, processes: int, width: int, size: pilot.SearchCost) -> Estimate:
    """The estimate from a pilot's result (`found`, as stored and cached by `search_pilot_run`)."""
    estimator, budget = plan.spec.estimator_label, float(found.get("budget", settings.FANOUT_PILOT_SECONDS))
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


def _without_history(
    plan: Plan, data_key: str | None, processes: int, width: int, size: pilot.SearchCost, dataset: Dataset | None
) -> Estimate:
    """No past fits: a pilot's result if one has run for this estimator, parameters and data, else says so.
    Never runs one (this is the web process)."""
    estimator = plan.spec.estimator_label
    source = _data_source(plan, dataset)
    if settings.FANOUT_PILOT_SECONDS <= 0 or source is None or not plan.candidates:
        return Estimate(size.fits, processes, None, None, f"no past fits of {estimator} to estimate from yet")
    found = cache.get(_pilot_key(plan, data_key, source))
    if found is not None:
        return _from_pilot(found, plan, processes, width, size)
    basis = (
        f"no estimate yet: no past fits of {estimator}; a pilot runs on the cluster when the search starts, "
        "and the search's page shows its estimate"
    )
    return Estimate(size.fits, processes, None, None, basis)


def _stored_plan(search: Search) -> tuple[Plan, str | None, dict[str, Any] | None]:
    """The search's plan as stored (its first round's candidates, not drawn again), the key its pilot is
    cached under and the runner's description of its data."""
    steps = [(name, module) for name, module in search.steps] or [
        (name, registry.lookup(name).module) for name in search.estimator.split(" → ")
    ]
    candidates = list(search.candidates.filter(round=0).order_by("index").values_list("params", flat=True))
    plan = Plan(parse_spec(search.spec_to_replan()), tuple(steps), search.task, candidates)
    source = _data_source(plan, search.dataset)
    key = search.dataset.key if plan.spec.dataset.csv is None else _file_key(plan.spec.dataset.csv)
    return plan, key, source


def _search_size(search: Search, plan: Plan) -> pilot.SearchCost:
    schedule = halving.Schedule.from_dict(search.schedule) if search.schedule else None
    return search_size(plan, n_samples=search.dataset.n_samples, n_classes=None, schedule=schedule)


def search_pilot_enqueue(*, search_id: int) -> bool:
    """Send a search's pilot to the cluster if nothing else can estimate it: pilots on, no past fits of its
    estimator (the owner's, on any data set). A pilot cached for the same estimator, parameters and data is
    stored at once instead. Enqueue it after the search's units (on commit): it then never delays them.
    Sent at most once per search; returns whether it was sent."""
    from django_q.tasks import async_task

    search = Search.objects.select_related("dataset").filter(pk=search_id, status__in=Status.ACTIVE).first()
    if search is None or settings.FANOUT_PILOT_SECONDS <= 0 or search.pilot is not None:
        return False
    if _history(search.estimator, None, search.owner) is not None:
        return False
    try:
        plan, key, source = _stored_plan(search)
    except (SpecError, KeyError) as exc:  # a spec stored by an older version: no pilot, no harm
        log.warning("no pilot for search %s: %s", search_id, exc)
        return False
    if source is None or not plan.candidates:
        return False
    found = cache.get(_pilot_key(plan, key, source))
    if found is not None:
        _pilot_store(search, plan, found)
        return False
    if not Search.objects.filter(pk=search_id, pilot__isnull=True).update(pilot={"state": "queued"}):
        return False  # sent already
    try:
        async_task(
            "search.tasks.run_pilot", search_id, task_name=f"search-{search_id}-pilot", group=f"search-{search_id}"
        )
    except Exception:  # noqa: BLE001 - broker unreachable: the search runs without a pilot
        log.warning("could not enqueue the pilot of search %s", search_id)
        Search.objects.filter(pk=search_id).update(pilot=None)
        return False
    return True


def _pilot_store(search: Search, plan: Plan, found: dict[str, Any]) -> bool:
    processes, width = _widths(plan, size := _search_size(search, plan))
    estimate = _from_pilot(found, plan, processes, width, size)
    pilot_row = {**found, "state": "done", "cpu_seconds": estimate.cpu_seconds,
                 "wall_seconds": estimate.wall_seconds, "text": estimate.line()}  # fmt: skip
    return bool(Search.objects.filter(pk=search.pk, status__in=Status.ACTIVE).update(pilot=pilot_row))


def _waiting(search_id: int) -> bool:
    """Whether no unit of the search has been claimed yet (it is queued, not running, finished or cancelled)."""
    search = Search.objects.filter(pk=search_id, status=Status.QUEUED)
    return search.exists() and not WorkUnit.objects.filter(search_id=search_id).exclude(status=Status.QUEUED).exists()


def search_pilot_run(*, search_id: int) -> str:
    """The pilot task's work: time a few fits of the search in a runner (bounded by FANOUT_PILOT_SECONDS),
    then store the result on the search and in the cache. A pilot is an estimate for a search that waits: one
    whose units have started is skipped (its own fits time it, and the pilot would take their cores or sit on
    its critical path: between its last unit and its refit on a one-worker cluster), and a running pilot is
    stopped as soon as one of them is claimed, or the search is cancelled. A search that is finished,
    cancelled or already piloted is skipped too. Returns what happened, for django-q2's row."""
    search = Search.objects.select_related("dataset").filter(pk=search_id, status__in=Status.ACTIVE).first()
    budget = float(settings.FANOUT_PILOT_SECONDS)
    if search is None or budget <= 0 or (search.pilot or {}).get("state") == "done":
        return "skipped"
    if not _waiting(search_id):
        Search.objects.filter(pk=search_id, pilot__state="queued").update(pilot=None)  # none will run
        return "skipped: the search has started"
    try:
        plan, key, source = _stored_plan(search)
    except (SpecError, KeyError) as exc:
        return f"skipped: {exc}"
    if source is None or not plan.candidates:
        return "skipped: no data to time"

    result = pilot_run(plan=plan, source=source, budget=budget, stop=lambda: not _waiting(search_id))
    if result.stopped:
        if Search.objects.filter(pk=search_id, status__in=Status.ACTIVE).exists():
            Search.objects.filter(pk=search_id, pilot__state="queued").update(pilot=None)
            return "stopped: the search has started"
        return "cancelled"
    found = {
        "per_cost": result.per_cost, "lower_bound": result.lower_bound, "per_fit": result.seconds_per_fit(),
        "fits": sum(f.finished for f in result.fits), "error": result.error, "budget": budget,
    }  # fmt: skip
    cache.set(_pilot_key(plan, key, source), found, PILOT_CACHE_SECONDS)
    return "stored" if _pilot_store(search, plan, found) else "finished before the pilot"


def estimate_plan(*, plan: Plan, owner: Any = None, data_plan: DataPlan | None = None) -> Estimate:
    """The estimate for a spec that is not stored yet: nothing is created, large data is not built.
    `data_plan`: `plan` checked against its data when the caller has read it already
    (services.searches.plan_check_data); its candidates, schedule, rows and classes are used as they are."""
    ds = plan.spec.dataset
    dataset = None
    if ds.id is not None:  # one of the owner's data sets; another user's (or none) is estimated as unknown data
        try:
            dataset = owner_dataset(owner=owner, dataset_id=ds.id)
        except SpecError:
            dataset = None
    elif ds.csv is None:
        dataset = Dataset.objects.filter(key=dataset_key(ds), owner=owner).first()
    classification = plan.task == "classification"
    n_classes: int | None = None
    schedule: halving.Schedule | None = None
    if data_plan is not None:
        plan, schedule = data_plan.plan, data_plan.schedule
        n_samples, n_classes = data_plan.n_samples, data_plan.n_classes
    elif ds.name in datasets.BUILTIN:  # small and bundled: read as the search will
        data = datasets.load_builtin(ds.name)
        n_samples, n_classes = data.n_samples, classes_of(plan, data)
    elif ds.csv is not None:
        n_samples = _csv_rows(ds.csv)
    elif ds.id is not None:  # the stored row's size; its classes are not read for an estimate
        n_samples = dataset.n_samples if dataset else 0
    else:  # a generator: from its options, without building the data
        n_samples = dataset.n_samples if dataset else int(ds.options.get("n_samples", 100))
        if classification and ds.name == "make_classification":
            n_classes = int(ds.options.get("n_classes", 2))
    if ds.id is not None:
        key = dataset.key if dataset else None
    else:
        key = dataset_key(ds) if ds.csv is None else _file_key(ds.csv)
    note = ""
    if data_plan is None and needs_data_to_sample(plan.spec):  # halving over n_candidates="exhaust" sampling
        drawn = None
        if n_samples and (n_classes or not classification):  # draw them as the search will
            try:
                drawn = sampled_for_data(plan, n_samples=n_samples, n_classes=n_classes)
            except SpecError as exc:  # the search's own submit reports it on its field; the estimate goes on
                note = f"; the 'exhaust' candidates could not be drawn for this estimate ({exc})"
        if drawn is not None:
            plan = drawn
        elif not note:
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

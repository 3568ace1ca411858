"""Searches: plan a spec, store it with its candidates and work units, enqueue, cancel, rerun.

Every adapter (views, admin, management commands, tasks) calls these. Naming follows
`<entity>_<action>(*, kw-only args)`. Multi-step writes are short transactions; work is enqueued only after
the transaction commits (docs/traps.md, at-least-once delivery)."""

from __future__ import annotations

import functools
import itertools
import logging
import math
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from search.engine import datasets, guards
from search.engine.cost import relative_cost
from search.engine.schedule import chain_groups, unit_bounds
from search.engine.spec import DatasetSpec, SearchSpec, SpecError, parse_spec
from search.engine.validate import DataPlan, Plan, plan_for_data, validate_spec
from search.models import Candidate, Prediction, ScalingStudy, Search, Status, WorkUnit
from search.selectors.cluster import live_clusters
from search.selectors.datasets import owner_dataset
from search.services.datasets import dataset_load, dataset_store
from search.services.estimates import search_pilot_enqueue
from search.services.quotas import quota_check

log = logging.getLogger(__name__)


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
    }


def plan_search(data: Any) -> Plan:
    """Parse and validate a spec (JSON-like) with scikit-learn's checks; raises SpecError.
    A search above FANOUT_MAX_FITS is refused before its candidates are listed."""
    spec = data if isinstance(data, SearchSpec) else parse_spec(data)
    guards.check_size(spec, settings.FANOUT_MAX_FITS, max_n_jobs=settings.FANOUT_MAX_N_JOBS)
    guards.check_params_safe(spec)
    return validate_spec(spec)


def unit_ranges(
    n_candidates: int,
    n_splits: int,
    machines: int,
    costs: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
) -> list[tuple[int, int]]:
    """Candidate ranges. One machine: as few units as possible (every unit boundary leaves a short tail). Several:
    about FANOUT_UNITS_PER_MACHINE units each, so a fast machine takes more while a slow one finishes, but never
    fewer than FANOUT_MIN_FITS_PER_UNIT fits per unit. Without `costs` the ranges are of equal size. With the
    candidates' estimated `costs` (engine.cost) they are of equal cost, the last one per machine half as long,
    and with `groups` (engine.schedule.chain_groups) cut between path-reuse chains, down to one chain per unit
    when that gives the machines enough units (engine.schedule.unit_bounds)."""
    per_unit = max(1, settings.FANOUT_MAX_FITS_PER_UNIT // n_splits)
    n_units = math.ceil(n_candidates / per_unit)
    if machines > 1:
        by_fits = max(1, n_candidates * n_splits // settings.FANOUT_MIN_FITS_PER_UNIT)
        n_units = max(n_units, min(machines * settings.FANOUT_UNITS_PER_MACHINE, by_fits, n_candidates))
    if costs is None:
        size = math.ceil(n_candidates / n_units)
        return [(start, min(start + size, n_candidates)) for start in range(0, n_candidates, size)]
    if machines > 1 and groups is not None:
        chains = 1 + sum(a != b for a, b in itertools.pairwise(groups))
        n_units = max(n_units, min(chains, machines * settings.FANOUT_UNITS_PER_MACHINE))
        if n_units == chains:  # one unit per chain
            edges = [i for i in range(1, n_candidates) if groups[i] != groups[i - 1]]
            return list(itertools.pairwise([0, *edges, n_candidates]))
    tail = machines if machines > 1 and n_units > 2 * machines else 0
    return unit_bounds(costs, n_units, tail=tail, groups=groups)


def search_create(
    *,
    plan: Plan,
    owner: Any = None,
    base_dir: Path | None = None,
    enqueue: bool = True,
    rerun_of: Search | None = None,
    study: ScalingStudy | None = None,
    max_machines: int | None = None,
) -> Search:
    """Store a validated search with its candidates and work units; enqueue the units after commit.
    `max_machines` limits it to that many machines (see services.machines); its units are sized for them.

    A first round of more than FANOUT_INLINE_CANDIDATES candidates, when enqueuing, is stored in the background
    instead: the search is stored with `candidates_stored=0` and one task (`search_prepare`) stores the
    candidates and units in batches, enqueuing each batch's units as it commits (no request holds the SQLite
    write lock for 10^5 rows)."""
    spec = plan.spec
    # The slow part first, outside any transaction: every transaction takes SQLite's write lock at BEGIN
    # (docs/traps.md, sqlite locking), and workers' heartbeats and results must not wait for a CSV parse, a
    # generator, candidate sampling or the halving schedule. A data check that fails stores nothing, not even
    # the data set's row.
    loaded = dataset_load(spec.dataset, base_dir, owner=owner)  # `{"id": N}`: the owner's row, never another's
    planned = plan_for_data(plan, loaded.data, max_fits=settings.FANOUT_MAX_FITS)
    plan, rounds = planned.plan, planned.schedule
    first = planned.first_round  # round 0 now; the next rounds once a round is scored (search_finalize)
    n_candidates = planned.n_candidates
    background = enqueue and len(first) > settings.FANOUT_INLINE_CANDIDATES
    stored_spec = spec.to_dict()
    with transaction.atomic():  # then the writes only: the data set's row, the search, its candidates and units
        quota_check(owner=owner, n_fits=n_candidates * spec.cv.n_splits)  # per-user limits, with this batch's searches
        dataset = dataset_store(loaded, owner)
        if spec.dataset.csv is not None:
            stored_spec["dataset"] = {"csv": dataset.name, "target": spec.dataset.target, "dataset_id": dataset.pk}
        search = Search.objects.create(
            name=spec.name, owner=owner, spec=stored_spec, estimator=spec.estimator_label, task=plan.task,
            dataset=dataset, n_candidates=n_candidates, n_splits=spec.cv.n_splits,
            n_fits=n_candidates * spec.cv.n_splits,
            metrics=list(spec.metrics), refit_metric=spec.refit_metric, n_jobs=spec.n_jobs,
            versions=library_versions(), rerun_of=rerun_of, steps=[list(step) for step in plan.steps],
            study=study, study_n_jobs=spec.n_jobs if study else None, max_machines=max_machines,
            strategy=spec.strategy, schedule=rounds.to_dict() if rounds else {},
            holdout={**spec.holdout.to_dict(), "n_train": planned.n_samples, "n_test": planned.n_test, "scores": None}
            if spec.holdout else None, candidates_stored=0 if background else None,
        )  # fmt: skip
        search_id = search.pk
        if background:  # the candidates and units: by search_prepare, in its own short transactions
            transaction.on_commit(lambda: search_prepare_enqueue(search_id=search_id))
        else:
            n_resources = rounds.n_resources[0] if rounds else None
            search_round_create(search, first, round=0, start=0, n_resources=n_resources)
        if enqueue:
            if not background:
                transaction.on_commit(lambda: search_enqueue(search_id=search_id))
            # after the units, so the pilot never delays the search's own fits (at most once per search)
            transaction.on_commit(lambda: search_pilot_enqueue(search_id=search_id))
    return search


LIVE_CHECK_BYTES = 5 * 1024 * 1024  # a CSV file read for the form's live check (larger ones: checked on submit)


LIVE_CHECK_CELLS = 2_000_000  # generated rows × features built for the live check


def data_for_check(ds: DatasetSpec, owner: Any = None) -> datasets.Data | None:
    """A spec's data read for a check before anything is stored: bundled data, generated data up to
    LIVE_CHECK_CELLS, CSV files up to LIVE_CHECK_BYTES and the owner's data set named by id up to LIVE_CHECK_CELLS;
    None for larger ones (checked when the search is submitted) and for a CSV file that cannot be read (the upload
    form has already reported it). Raises SpecError for a generator's own refusal of its options, and for an id
    that is not one of the owner's data sets."""
    if ds.id is not None:
        row = owner_dataset(owner=owner, dataset_id=ds.id)
        if row.n_samples * row.n_features > LIVE_CHECK_CELLS:
            return None
        return dataset_load(ds, None, owner=owner).data
    if ds.csv is not None:
        path = Path(ds.csv)
        if not path.is_file() or path.stat().st_size > LIVE_CHECK_BYTES:
            return None
        try:
            return datasets.read_csv(path.read_bytes(), ds.target or "")
        except datasets.DatasetError:
            return None  # the upload form has already reported it
    if ds.name in datasets.BUILTIN:
        return datasets.load_builtin(ds.name)
    assert ds.name is not None
    options = {**datasets.generator_options(ds.name), **ds.options}
    try:
        cells = int(options.get("n_samples", 100)) * int(options.get("n_features", 2))
    except (TypeError, ValueError):
        return None  # per-cluster sample counts and the like: checked on submit
    if cells > LIVE_CHECK_CELLS:
        return None
    try:
        return datasets.generate(ds.name, dict(ds.options))
    except datasets.DatasetError as exc:
        raise SpecError("dataset.options", str(exc)) from None


def plan_check_data(plan: Plan, owner: Any = None) -> DataPlan | None:
    """The step `search_create` runs against the data (`plan_for_data`: folds against classes, target against
    the estimator, scorer against the target, 'exhaust' candidates drawn, halving budget against rows), for the
    form's live check; nothing is stored. Raises SpecError. Returns the DataPlan when the data was read
    (`data_for_check`; `owner`'s data set for a spec's `{"id": N}`), for the estimate; None when it was not."""
    data = data_for_check(plan.spec.dataset, owner)
    if data is None:
        return None
    return plan_for_data(plan, data, max_fits=settings.FANOUT_MAX_FITS)


def search_round_create(
    search: Search, params: list[dict[str, Any]], *, round: int, start: int, n_resources: int | None
) -> list[WorkUnit]:
    """A round's candidates (indices from `start`) and the work units that cover them, sized for the
    machines attached (at most `search.max_machines`)."""
    fixed = search.stored.params
    costs = [relative_cost({**fixed, **p}) for p in params]
    groups = chain_groups(search.steps, params) if settings.FANOUT_PATH_REUSE else None
    ranges = unit_ranges(len(params), search.n_splits, search_machines(search), costs=costs, groups=groups)
    return _round_store(search, params, ranges, round=round, start=start, n_resources=n_resources)


def search_machines(search: Search) -> int:
    """The machines this search may spread over now: those reporting to the broker, at most its `max_machines`."""
    machines = live_clusters()
    return min(machines, search.max_machines) if search.max_machines else machines


def _round_store(
    search: Search,
    params: list[dict[str, Any]],
    ranges: list[tuple[int, int]],
    *,
    round: int,
    start: int,
    n_resources: int | None,
) -> list[WorkUnit]:
    """Candidates `params` (indices from `start`) and one unit per range of `ranges` (relative to `start`)."""
    Candidate.objects.bulk_create(
        [
            Candidate(search=search, index=start + i, params=p, round=round, n_resources=n_resources)
            for i, p in enumerate(params)
        ],
        batch_size=2000,
    )
    first_unit = search.units.aggregate(next=Coalesce(Max("index") + 1, 0))["next"]  # not a count: units merge
    return WorkUnit.objects.bulk_create(
        [
            WorkUnit(search=search, index=first_unit + i, candidate_start=start + a, candidate_stop=start + b,
                     round=round)
            for i, (a, b) in enumerate(ranges)
        ]
    )  # fmt: skip


PREPARE_BATCH = 2000  # candidates per transaction of the background creation (whole units, at least one)


def search_prepare_enqueue(*, search_id: int) -> None:
    """Send the background creation task of a search stored with `candidates_stored=0` (its id only)."""
    from django_q.tasks import async_task

    try:
        async_task("search.tasks.prepare_search", search_id, task_name=f"search-{search_id}-prepare",
                   group=f"search-{search_id}")  # fmt: skip
    except Exception:  # noqa: BLE001 - broker unreachable: logged; sending it again is idempotent
        log.warning("could not enqueue the preparation of search %s", search_id)


def _batches(ranges: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    """Consecutive unit ranges grouped into batches of about `size` candidates (a larger unit alone)."""
    out: list[list[tuple[int, int]]] = []
    for a, b in ranges:
        if out and b - out[-1][0][0] <= size:
            out[-1].append((a, b))
        else:
            out.append([(a, b)])
    return out


def search_prepare(*, search_id: int, enqueue: bool = True, max_batches: int | None = None) -> int:
    """Store the first round's candidates and units of a search created in the background (`candidates_stored`
    not empty), from the last candidate stored, one batch of whole units per short transaction (SQLite's write
    lock is never held for long); with `enqueue`, each batch's units are sent as soon as it commits, so the
    first fits start while the rest is stored. The last batch empties `candidates_stored`.

    Idempotent: each batch moves `candidates_stored` on from the value it started at by a conditional UPDATE in
    its own transaction, so a second delivery, or a task started again after its worker died midway, resumes
    where the stored rows end and never stores a candidate twice. The candidates are planned again from the
    stored spec and data (deterministic: random and halving searches are seeded). `max_batches` stops after that
    many batches (a test's worker killed midway). Returns how many candidates this call stored."""
    search = Search.objects.select_related("dataset").get(pk=search_id)
    start = search.candidates_stored
    if start is None or search.status not in Status.ACTIVE:
        return 0
    plan = plan_search(search.spec_to_replan())
    loaded = dataset_load(plan.spec.dataset, None, owner=search.owner)
    planned = plan_for_data(plan, loaded.data, max_fits=settings.FANOUT_MAX_FITS)
    params, rounds = planned.first_round, planned.schedule
    if start < len(params):
        bounds = unit_ranges(len(params) - start, search.n_splits, search_machines(search))
        ranges = [(start + a, start + b) for a, b in bounds]
    else:
        ranges = []
    stored = 0
    for batch in _batches(ranges, PREPARE_BATCH)[:max_batches]:
        a, b = batch[0][0], batch[-1][1]
        with transaction.atomic():  # the UPDATE first: it takes the write lock and fences a concurrent delivery
            moved = Search.objects.filter(pk=search_id, status__in=Status.ACTIVE, candidates_stored=a).update(
                candidates_stored=None if b == len(params) else b
            )
            if not moved:
                break  # cancelled, or another delivery stored this batch
            units = _round_store(
                search, params[a:b], [(x - a, y - a) for x, y in batch], round=0, start=a,
                n_resources=rounds.n_resources[0] if rounds else None,
            )  # fmt: skip
            if enqueue:
                transaction.on_commit(functools.partial(search_enqueue, search_id=search_id, units=units))
        stored += b - a
    if not ranges:  # nothing left to store (e.g. every batch stored but the marker not yet emptied)
        Search.objects.filter(pk=search_id, candidates_stored=start).update(candidates_stored=None)
    return stored


def search_enqueue(*, search_id: int, units: Iterable[WorkUnit] | None = None) -> int:
    """Hand queued units to django-q2 (ids only, never data: docs/traps.md, oversubscription and memory).
    Returns how many."""
    from django_q.tasks import async_task

    todo = (
        list(units) if units is not None else list(WorkUnit.objects.filter(search_id=search_id, status=Status.QUEUED))
    )
    sent = 0
    for unit in todo:
        try:
            task_id = async_task(
                "search.tasks.run_unit",
                unit.pk,
                task_name=f"search-{search_id}-unit-{unit.index}",
                group=f"search-{search_id}",
            )
        except Exception:  # noqa: BLE001 - broker unreachable: the reconciler sends it once it is back
            log.warning("could not enqueue unit %s of search %s; the reconciler will resend it", unit.pk, search_id)
            continue
        WorkUnit.objects.filter(pk=unit.pk).update(q_task_id=str(task_id), enqueued_at=timezone.now())
        sent += 1
    return sent


def messages_missing() -> int:
    """How many messages the broker lacks: one is owed for every queued unit of a live search and for every queued
    prediction (services.predictions), less what it holds (0 or less: none is missing). The reconciler resends
    the longest-waiting work for as many as are missing."""
    from django_q.brokers import get_broker

    owed = (
        WorkUnit.objects.filter(search__status__in=Status.ACTIVE, status=Status.QUEUED).count()
        + Prediction.objects.filter(status=Status.QUEUED).count()
    )
    return owed - int(get_broker().queue_size() or 0)


def search_cancel(*, search: Search) -> bool:
    """Stop a search: queued units are dropped, running ones see it at their next heartbeat."""
    now = timezone.now()
    with transaction.atomic():
        changed = Search.objects.filter(pk=search.pk, status__in=Status.ACTIVE).update(
            status=Status.CANCELLED, finished_at=now, error="cancelled by the user"
        )
        WorkUnit.objects.filter(search=search, status__in=Status.ACTIVE).update(
            status=Status.CANCELLED, finished_at=now
        )
        if changed and search.study_id:  # one cancelled run ends its study: the later runs are dropped
            ScalingStudy.objects.filter(pk=search.study_id, status__in=Status.ACTIVE).update(
                status=Status.CANCELLED, error=f"run {search.pk} was cancelled", finished_at=now
            )
            for run in Search.objects.filter(study_id=search.study_id, status=Status.QUEUED).exclude(pk=search.pk):
                search_cancel(search=run)
    search.refresh_from_db()
    return bool(changed)


def search_rerun(*, search: Search, enqueue: bool = True) -> Search:
    """A new search with the same spec and data set (the old one is kept and linked)."""
    return search_create(
        plan=plan_search(search.spec_to_replan()), owner=search.owner, enqueue=enqueue, rerun_of=search
    )

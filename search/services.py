"""Search services: every adapter (admin, management commands, tasks, later the web views) calls these.

Naming follows `<entity>_<action>(*, kw-only args)`. Multi-step writes are short transactions; work is
enqueued only after the transaction commits.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import platform
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from search import selectors
from search.engine import aggregate, datasets, guards, halving, speedup
from search.engine import spec as spec_mod
from search.engine.run import load_data
from search.engine.spec import Plan, SearchSpec, SpecError
from search.models import FINISHED, Candidate, Dataset, Result, ScalingStudy, Search, Status, WorkUnit

log = logging.getLogger(__name__)


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
    }


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------


def _key(payload: Any) -> str:
    return datasets.sha256(json.dumps(payload, sort_keys=True).encode())


def dataset_key(ds: spec_mod.DatasetSpec) -> str:
    """The key of a bundled or generated data set (CSV keys hash the file's bytes instead)."""
    return _key({"name": ds.name, "options": dict(ds.options)})


def dataset_get_or_create(*, ds: spec_mod.DatasetSpec, owner: Any = None, base_dir: Path | None = None) -> Dataset:
    """The Dataset row for a spec's `dataset`; a CSV path is read now and its bytes stored."""
    return _dataset_with_data(ds, owner, base_dir)[0]


def _dataset_with_data(ds: spec_mod.DatasetSpec, owner: Any, base_dir: Path | None) -> tuple[Dataset, datasets.Data]:
    """The row and its rows, built once (a 200 MB generator is not generated twice per search)."""
    if ds.csv is not None:
        path = Path(ds.csv)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            content = _read_csv_bytes(path)
        except OSError as exc:
            raise SpecError("dataset.csv", f"cannot read {str(path)!r}: {exc.strerror}") from None
        try:
            data = datasets.read_csv(content, ds.target or "")
        except datasets.DatasetError as exc:
            raise SpecError("dataset.csv", f"{path.name}: {exc}") from None
        key = datasets.sha256(content + b"\0" + (ds.target or "").encode())
        found = Dataset.objects.filter(key=key, owner=owner).first()
        if found:
            return found, data
        return Dataset.objects.create(
            name=path.name, kind=Dataset.Kind.CSV, source={"target": ds.target, "filename": path.name},
            content=content, key=key, n_samples=data.n_samples, n_features=data.n_features, owner=owner,
        ), data  # fmt: skip
    kind = Dataset.Kind.BUILTIN if ds.name in datasets.BUILTIN else Dataset.Kind.GENERATOR
    source = {"name": ds.name, "options": dict(ds.options)}
    key = dataset_key(ds)
    try:
        data = load_data({"kind": kind, **source})
    except datasets.DatasetError as exc:  # a generator's own check of its options (n_samples=-1, …)
        raise SpecError("dataset.options", str(exc)) from None
    found = Dataset.objects.filter(key=key, owner=owner).first()
    if found:
        return found, data
    label = str(ds.name) if not ds.options else f"{ds.name}({', '.join(f'{k}={v}' for k, v in ds.options.items())})"
    return Dataset.objects.create(
        name=label[:200], kind=kind, source=source, key=key,
        n_samples=data.n_samples, n_features=data.n_features, owner=owner,
    ), data  # fmt: skip


def dataset_local_path(dataset: Dataset) -> str | None:
    """A CSV data set's bytes as a local file, cached by content hash (written once, atomically)."""
    if dataset.kind != Dataset.Kind.CSV:
        return None
    cache: Path = settings.FANOUT_CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    content = bytes(dataset.content or b"")
    path = cache / f"{datasets.sha256(content)}.csv"
    if not path.exists():
        tmp = path.with_suffix(f".{timezone.now().timestamp()}.tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    return str(path)


def _read_csv_bytes(path: Path) -> bytes:
    """A CSV named in a spec file, under the upload limit too; read no further than the limit, and only
    from a regular file (a FIFO, /dev/zero or /dev/stdin would hang the command or fill its memory)."""
    if path.exists() and not path.is_file():
        raise SpecError("dataset.csv", f"{str(path)!r} is not a regular file; give the path of a .csv file")
    limit_mb = settings.FANOUT_MAX_UPLOAD_MB
    with path.open("rb") as f:
        content = f.read(limit_mb * 1024 * 1024 + 1)
    if len(content) > limit_mb * 1024 * 1024:
        raise SpecError(
            "dataset.csv", f"{path.name} is over {limit_mb} MB; the limit is {limit_mb} MB (FANOUT_MAX_UPLOAD_MB)"
        )
    return content


def _check_data_fits_cv(plan: Plan, data: datasets.Data) -> None:
    guards.check_target(plan.task, plan.spec.estimator[-1], data.y)
    k = plan.spec.cv.n_splits
    if k > data.n_samples:
        raise SpecError("cv.n_splits", f"{k} folds need at least {k} rows; the data set has {data.n_samples}")
    if plan.task == "classification":
        _, counts = np.unique(data.y, return_counts=True)
        if len(counts) < 2:
            raise SpecError("dataset", "the target has a single class; a classifier needs at least two")
        if k > counts.min():
            raise SpecError(
                "cv.n_splits",
                f"{k} stratified folds need at least {k} rows of every class; the smallest class has "
                f"{counts.min()}. Lower n_splits or use a larger data set.",
            )
    elif not np.issubdtype(data.y.dtype, np.number):
        raise SpecError("dataset", "a regressor needs a numeric target; this target holds text labels")
    guards.check_scoring_on_target(plan.spec, plan.task, data.y)


# ---------------------------------------------------------------------------------------------
# Searches
# ---------------------------------------------------------------------------------------------


def plan_search(data: Any) -> Plan:
    """Parse and validate a spec (JSON-like) with scikit-learn's checks; raises SpecError.
    A search above FANOUT_MAX_FITS is refused before its candidates are listed."""
    spec = data if isinstance(data, SearchSpec) else spec_mod.parse_spec(data)
    guards.check_size(spec, settings.FANOUT_MAX_FITS)
    guards.check_params_safe(spec)
    return spec_mod.validate_spec(spec)


def live_clusters() -> int:
    """How many qclusters (machines) report to the broker right now."""
    from django_q.status import Stat

    try:
        return len({stat.cluster_id for stat in Stat.get_all()})
    except Exception:  # noqa: BLE001 - an unreachable cache only loses the balancing hint
        return 0


def unit_ranges(n_candidates: int, n_splits: int, machines: int) -> list[tuple[int, int]]:
    """Candidate ranges of equal size. One machine: as few units as possible (every unit boundary
    leaves a short tail). Several: about FANOUT_UNITS_PER_MACHINE units each, so a fast machine takes
    more while a slow one finishes, but never fewer than FANOUT_MIN_FITS_PER_UNIT fits per unit."""
    per_unit = max(1, settings.FANOUT_MAX_FITS_PER_UNIT // n_splits)
    n_units = math.ceil(n_candidates / per_unit)
    if machines > 1:
        by_fits = max(1, n_candidates * n_splits // settings.FANOUT_MIN_FITS_PER_UNIT)
        n_units = max(n_units, min(machines * settings.FANOUT_UNITS_PER_MACHINE, by_fits, n_candidates))
    size = math.ceil(n_candidates / n_units)
    return [(start, min(start + size, n_candidates)) for start in range(0, n_candidates, size)]


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
    `max_machines` limits it to that many machines (see search.machines); its units are sized for them."""
    spec = plan.spec
    with transaction.atomic():  # a data check that fails stores nothing, not even the data set's row
        dataset, data = _dataset_with_data(spec.dataset, owner, base_dir)
        _check_data_fits_cv(plan, data)
        plan = _sampled_for_data(plan, data)
        rounds = _halving_schedule(plan, data)
    first = plan.candidates
    n_candidates = plan.n_candidates
    if rounds is not None:  # round 0 now; the next rounds once a round is scored (search_finalize)
        assert spec.halving is not None
        first = [halving.round_params(p, spec.halving, rounds.n_resources[0]) for p in plan.candidates]
        n_candidates = sum(rounds.n_candidates)
    stored_spec = spec.to_dict()
    if spec.dataset.csv is not None:
        stored_spec["dataset"] = {"csv": dataset.name, "target": spec.dataset.target, "dataset_id": dataset.pk}
    with transaction.atomic():
        search = Search.objects.create(
            name=spec.name, owner=owner, spec=stored_spec, estimator=spec.estimator_label, task=plan.task,
            dataset=dataset, n_candidates=n_candidates, n_splits=spec.cv.n_splits,
            n_fits=n_candidates * spec.cv.n_splits,
            metrics=list(spec.metrics), refit_metric=spec.refit_metric, n_jobs=spec.n_jobs,
            versions=library_versions(), rerun_of=rerun_of, steps=[list(step) for step in plan.steps],
            study=study, study_n_jobs=spec.n_jobs if study else None, max_machines=max_machines,
            kind=spec.strategy, schedule=rounds.to_dict() if rounds else {},
        )  # fmt: skip
        _round_create(search, first, iteration=0, start=0, n_resources=rounds.n_resources[0] if rounds else None)
        if enqueue:
            search_id = search.pk
            transaction.on_commit(lambda: search_enqueue(search_id=search_id))
    return search


LIVE_CHECK_BYTES = 5 * 1024 * 1024  # a CSV file read for the form's live check (larger ones: checked on submit)
LIVE_CHECK_CELLS = 2_000_000  # generated rows × features built for the live check


def classes_of(plan: Plan, data: datasets.Data) -> int | None:
    """The number of classes of the target for a classifier (what halving's "smallest" counts); None for a
    regressor."""
    return len(np.unique(data.y)) if plan.task == "classification" else None


def plan_check_data(plan: Plan) -> tuple[int, int | None] | None:
    """The checks `search_create` runs against the data (folds against classes, target against the estimator,
    scorer against the target, halving budget against rows), for the form's live check; nothing is stored.
    Bundled data, generated data up to LIVE_CHECK_CELLS and CSV files up to LIVE_CHECK_BYTES; larger ones
    are checked when the search is submitted. Raises SpecError. Returns the data's (rows, classes) when it
    was read (classes None for a regressor), for the estimate; None when it was not."""
    ds = plan.spec.dataset
    if ds.csv is not None:
        path = Path(ds.csv)
        if not path.is_file() or path.stat().st_size > LIVE_CHECK_BYTES:
            return None
        try:
            data = datasets.read_csv(path.read_bytes(), ds.target or "")
        except datasets.DatasetError:
            return None  # the upload form has already reported it
    elif ds.name in datasets.BUILTIN:
        data = datasets.load_builtin(ds.name)
    else:
        assert ds.name is not None
        options = {**datasets.generator_options(ds.name), **ds.options}
        try:
            cells = int(options.get("n_samples", 100)) * int(options.get("n_features", 2))
        except (TypeError, ValueError):
            return None  # per-cluster sample counts and the like: checked on submit
        if cells > LIVE_CHECK_CELLS:
            return None
        try:
            data = datasets.generate(ds.name, dict(ds.options))
        except datasets.DatasetError as exc:
            raise SpecError("dataset.options", str(exc)) from None
    _check_data_fits_cv(plan, data)
    _halving_schedule(_sampled_for_data(plan, data), data)
    return data.n_samples, classes_of(plan, data)


def _sampled_for_data(plan: Plan, data: datasets.Data) -> Plan:
    """Halving over sampled candidates with n_candidates="exhaust": HalvingRandomSearchCV's number of
    candidates depends on the data set's size, so they are drawn now (and the size limit checked again)."""
    if not spec_mod.needs_data_to_sample(plan.spec):
        return plan
    n_classes = classes_of(plan, data)
    plan = spec_mod.sampled_for_data(plan, n_samples=data.n_samples, n_classes=n_classes)
    if settings.FANOUT_MAX_FITS is not None and plan.n_fits > settings.FANOUT_MAX_FITS:
        raise SpecError(
            "halving.n_candidates",
            f"'exhaust' samples {plan.n_candidates:,} candidates for this data set ({plan.n_fits:,} fits in the "
            f"first round); the limit is {settings.FANOUT_MAX_FITS:,} (FANOUT_MAX_FITS). Give an integer.",
        )
    return plan


def _halving_schedule(plan: Plan, data: datasets.Data) -> halving.Schedule | None:
    """HalvingGridSearchCV's (or HalvingRandomSearchCV's) rounds for this data set (None for grid and random
    search)."""
    hs = plan.spec.halving
    if hs is None:
        return None
    n_classes = classes_of(plan, data)
    try:
        return halving.schedule(
            hs, n_candidates=plan.n_candidates, n_samples=data.n_samples, n_splits=plan.spec.cv.n_splits,
            n_classes=n_classes,
        )  # fmt: skip
    except halving.ScheduleError as exc:
        raise SpecError("halving.min_resources", str(exc)) from None


def _round_create(
    search: Search, params: list[dict[str, Any]], *, iteration: int, start: int, n_resources: int | None
) -> list[WorkUnit]:
    """A round's candidates (indices from `start`) and the work units that cover them, sized for the
    machines attached (at most `search.max_machines`)."""
    Candidate.objects.bulk_create(
        [
            Candidate(search=search, index=start + i, params=p, iteration=iteration, n_resources=n_resources)
            for i, p in enumerate(params)
        ],
        batch_size=2000,
    )
    machines = live_clusters()
    machines = min(machines, search.max_machines) if search.max_machines else machines
    first_unit = search.units.count()
    return WorkUnit.objects.bulk_create(
        [
            WorkUnit(search=search, index=first_unit + i, candidate_start=start + a, candidate_stop=start + b,
                     iteration=iteration)
            for i, (a, b) in enumerate(unit_ranges(len(params), search.n_splits, machines))
        ]
    )  # fmt: skip


def halving_subsample(search: Search, iteration: int) -> dict[str, Any] | None:
    """The runner's subsampling for a halving round over `n_samples` (None when nothing is subsampled)."""
    if search.kind != "halving" or search.spec["halving"]["resource"] != "n_samples":
        return None
    n_resources = search.schedule["n_resources"][iteration]
    return {"fraction": n_resources / search.dataset.n_samples, "random_state": search.spec.get("random_state")}


def _halving_advance(search: Search) -> bool:
    """Score the finished round, keep the best 1/factor as scikit-learn does, queue the next round.

    Returns False when the round's fits are incomplete. Idempotent: the round number is moved on by a
    conditional UPDATE, so two workers finishing the last units at once create the next round once."""
    itr = search.iteration
    cands = list(search.candidates.filter(iteration=itr).order_by("index"))
    fits = _fits_in_order(Result.objects.filter(candidate__in=cands), len(cands) * search.n_splits)
    if fits is None:
        return False
    params = [c.params for c in cands]
    results = aggregate.cv_results(params, search.n_splits, fits, search.metrics)
    sched = halving.Schedule.from_dict(search.schedule)
    hs = halving.HalvingSpec(**search.spec["halving"])
    means = results[f"mean_test_{search.metrics[0]}"]
    kept = halving.keep(params, means, sched.n_candidates[itr + 1])
    nxt = [halving.round_params(p, hs, sched.n_resources[itr + 1]) for p in kept]
    with transaction.atomic():
        moved = Search.objects.filter(pk=search.pk, iteration=itr, status__in=[Status.QUEUED, Status.RUNNING])
        if not moved.update(iteration=itr + 1):
            return True
        for cand, mean in zip(cands, means, strict=True):  # the round's scores show while the next one runs
            cand.score = mean
        _update_rows(cands, ["score"])
        start = sum(sched.n_candidates[: itr + 1])
        units = _round_create(search, nxt, iteration=itr + 1, start=start, n_resources=sched.n_resources[itr + 1])
        search_id = search.pk
        transaction.on_commit(lambda: search_enqueue(search_id=search_id, units=units))
    return True


def search_enqueue(*, search_id: int, units: Iterable[WorkUnit] | None = None) -> int:
    """Hand queued units to django-q2 (ids only, never data: HAZARDS.md §6). Returns how many."""
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


def search_cancel(*, search: Search) -> bool:
    """Stop a search: queued units are dropped, running ones see it at their next heartbeat."""
    now = timezone.now()
    with transaction.atomic():
        changed = Search.objects.filter(pk=search.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.CANCELLED, finished_at=now, error="cancelled by the user"
        )
        WorkUnit.objects.filter(search=search, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.CANCELLED, finished_at=now
        )
        if changed and search.study_id:  # one cancelled run ends its study: the later runs are dropped
            ScalingStudy.objects.filter(pk=search.study_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
                status=Status.CANCELLED, error=f"run {search.pk} was cancelled", finished_at=now
            )
            for run in Search.objects.filter(study_id=search.study_id, status=Status.QUEUED).exclude(pk=search.pk):
                search_cancel(search=run)
    search.refresh_from_db()
    return bool(changed)


def search_rerun(*, search: Search, enqueue: bool = True) -> Search:
    """A new search with the same spec and data set (the old one is kept and linked)."""
    raw = dict(search.spec)
    if "dataset_id" in raw["dataset"]:  # a stored CSV: validate from the cached copy of its bytes
        raw["dataset"] = {"csv": dataset_local_path(search.dataset), "target": raw["dataset"]["target"]}
    return search_create(plan=plan_search(raw), owner=search.owner, enqueue=enqueue, rerun_of=search)


def search_refresh_progress(*, search_id: int) -> None:
    done = Result.objects.filter(search_id=search_id).aggregate(
        n=models.Count("pk"), failed=models.Count("pk", filter=~models.Q(error="")),
        saved=models.Count("pk", filter=models.Q(path_reused=True)),
        reused=models.Count("pk", filter=models.Q(reused=True)),
    )  # fmt: skip
    Search.objects.filter(pk=search_id).update(
        n_fits_done=done["n"], n_fits_failed=done["failed"], fits_saved=done["saved"], fits_reused=done["reused"]
    )


def _fits_in_order(results: models.QuerySet[Result], expected: int) -> list[aggregate.Fit] | None:
    """`results` as `aggregate.Fit`s in GridSearchCV's order; None unless all `expected` fits are stored."""
    rows = results.order_by("candidate__index", "fold").values_list(
        "test_scores", "train_scores", "fit_time", "score_time"
    )
    fits = [aggregate.Fit(t, tr, ft, st) for t, tr, ft, st in rows]
    return fits if len(fits) == expected else None


def search_cv_results(*, search: Search) -> dict[str, list[Any]] | None:
    """`cv_results_` of a search whose fits are all stored; None while fits are missing."""
    fits = _fits_in_order(Result.objects.filter(search=search), search.n_fits)
    if fits is None:
        return None
    rows = list(search.candidates.order_by("index").values_list("params", "iteration", "n_resources"))
    results = aggregate.cv_results(
        [p for p, _, _ in rows], search.n_splits, fits, search.metrics, bool(search.spec.get("return_train_score"))
    )
    if search.kind == "halving":  # HalvingGridSearchCV puts its two extra keys first
        return {"iter": [i for _, i, _ in rows], "n_resources": [r for _, _, r in rows], **results}
    return results


def search_spans(search: Search) -> list[speedup.FitSpan]:
    """Every fit this search computed, for accounting and the timeline (one small tuple per fit). Fits
    copied from earlier searches (`reused`) are left out: their time was spent elsewhere."""
    rows = (
        Result.objects.filter(search=search, reused=False)
        .order_by("pk")
        .values_list("host", "pid", "started_at", "finished_at", "fit_time", "score_time")
    )
    return [speedup.FitSpan(h, p, a.timestamp(), b.timestamp(), ft + st) for h, p, a, b, ft, st in rows]


def search_accounting(search: Search) -> dict[str, Any]:
    """Wall time, busy time, speedup, efficiency, per machine and per process (see engine.speedup)."""
    acc = speedup.account(search_spans(search))
    acc.pop("start", None)
    acc.pop("end", None)
    return acc


def _failure_summary(search: Search) -> str:
    errors = Counter(Result.objects.filter(search=search).exclude(error="").values_list("error", flat=True))
    return "; ".join(f"{n}× {msg.splitlines()[-1]}" for msg, n in errors.most_common(3))


def search_finalize(*, search_id: int) -> Search:
    """Once every unit is finished: aggregate scores into candidates and record the best, once."""
    search = Search.objects.get(pk=search_id)
    if search.is_finished:
        return search
    units = list(search.units.all())
    if any(u.status in (Status.QUEUED, Status.RUNNING) for u in units):
        return search
    search_refresh_progress(search_id=search_id)
    search.refresh_from_db()
    now = timezone.now()
    failed = [u for u in units if u.status == Status.FAILED]
    last_round = len(search.schedule.get("n_resources", [0])) - 1
    if not failed and search.kind == "halving" and search.iteration < last_round and _halving_advance(search):
        search.refresh_from_db()
        return search
    results = None if failed else search_cv_results(search=search)
    if results is None:
        reason = "; ".join(f"unit {u.index}: {u.error}" for u in failed) or (
            f"{search.n_fits - search.n_fits_done} fits are missing"
        )
        changed = Search.objects.filter(pk=search_id, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.FAILED, error=reason, finished_at=now
        )
    else:
        changed = _store_aggregates(search, results)
    search.refresh_from_db()
    if changed and search.study_id:  # the process that finished this run moves its study on, once
        from search import scaling

        scaling.study_advance(study_id=search.study_id)
    return search


def _update_rows(rows: list[Candidate], fields: list[str]) -> None:
    """One parameterised UPDATE run for every row (executemany): `bulk_update`'s CASE expressions take
    seconds for 10,000 candidates; this takes a fraction of one, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    meta = Candidate._meta
    columns = [f for f in (meta.get_field(name) for name in fields) if isinstance(f, models.Field)]
    assert len(columns) == len(fields) and meta.pk is not None
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(str(meta.pk.column))} = %s"
    params = [[f.get_db_prep_save(getattr(row, f.attname), connection) for f in columns] + [row.pk] for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _store_aggregates(search: Search, results: dict[str, list[Any]]) -> int:
    metrics: list[str] = search.metrics
    rts = bool(search.spec.get("return_train_score"))
    if search.kind == "halving":
        best = halving.best_index(results["iter"], results[f"mean_test_{search.refit_metric}"])
    else:
        best = aggregate.best_index(results, search.refit_metric)
    candidates = list(search.candidates.order_by("index"))
    for i, c in enumerate(candidates):
        c.mean_test = {m: results[f"mean_test_{m}"][i] for m in metrics}
        c.std_test = {m: results[f"std_test_{m}"][i] for m in metrics}
        c.rank_test = {m: results[f"rank_test_{m}"][i] for m in metrics}
        if rts:
            c.mean_train = {m: results[f"mean_train_{m}"][i] for m in metrics}
            c.std_train = {m: results[f"std_train_{m}"][i] for m in metrics}
        c.mean_fit_time = results["mean_fit_time"][i]
        c.std_fit_time = results["std_fit_time"][i]
        c.mean_score_time = results["mean_score_time"][i]
        c.std_score_time = results["std_score_time"][i]
        c.score = c.mean_test[search.refit_metric]
        c.rank = c.rank_test[search.refit_metric]
    first_start = Result.objects.filter(search=search).order_by("started_at").values_list("started_at", flat=True)
    last_end = Result.objects.filter(search=search).order_by("-finished_at").values_list("finished_at", flat=True)
    cores = (
        search.units.exclude(processes_used=None).order_by("-processes_used").values_list("processes_used", flat=True)
    )
    acc = search_accounting(search)
    fields = ["mean_test", "std_test", "rank_test", "mean_train", "std_train", "mean_fit_time", "std_fit_time",
              "mean_score_time", "std_score_time", "score", "rank"]  # fmt: skip
    with transaction.atomic():
        _update_rows(candidates, fields)
        update: dict[str, Any] = {
            "best_index": best,
            "best_params": candidates[best].params if best is not None else None,
            "best_score": candidates[best].score if best is not None else None,
            "cores_used": acc["processes"] or cores.first(),
            "warnings": selectors.unit_warnings(search),
            "busy_time": acc["busy"],
            "speedup": acc["speedup"],
            "efficiency": acc["efficiency"],
            "accounting": acc,
            "started_at": first_start.first() or search.started_at,
            "finished_at": last_end.first() or timezone.now(),
        }
        if best is None:
            update.update(status=Status.FAILED, error=f"every fit failed: {_failure_summary(search)}")
        else:
            update.update(status=Status.DONE)
        return Search.objects.filter(pk=search.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(**update)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def search_export(*, search: Search) -> dict[str, Any]:
    """Metadata plus `cv_results` in scikit-learn's layout (null where a score is NaN)."""
    units = search.units.order_by("index")
    return {
        "search": {
            "id": search.pk,
            "name": search.name,
            "status": search.status,
            "estimator": search.estimator,
            "strategy": search.kind,
            "schedule": search.schedule or None,
            "task": search.task,
            "dataset": {"id": search.dataset_id, "name": search.dataset.name, "kind": search.dataset.kind},
            "spec": search.spec,
            "n_candidates": search.n_candidates,
            "n_splits": search.n_splits,
            "n_fits": search.n_fits,
            "n_fits_done": search.n_fits_done,
            "n_fits_failed": search.n_fits_failed,
            "fits_saved": search.fits_saved,  # path reuse: fits scored from a model grown for a larger one
            "fits_reused": search.fits_reused,  # copied from identical fits of earlier searches
            "metrics": search.metrics,
            "refit_metric": search.refit_metric,
            "best_index": search.best_index,
            "best_params": search.best_params,
            "best_score": search.best_score,
            "cores_used": search.cores_used,
            "busy_time": search.busy_time,
            "speedup": search.speedup,
            "efficiency": search.efficiency,
            "accounting": search.accounting,
            "warnings": search.warnings,
            "created_at": search.created_at.isoformat(),
            "started_at": search.started_at.isoformat() if search.started_at else None,
            "finished_at": search.finished_at.isoformat() if search.finished_at else None,
            "wall_time": search.wall_time,
            "versions": search.versions,
            "units": [
                {
                    "index": u.index,
                    "status": u.status,
                    "host": u.host,
                    "attempt": u.attempt,
                    "n_jobs_requested": u.n_jobs_requested,
                    "n_jobs_effective": u.n_jobs_effective,
                    "processes_used": u.processes_used,
                    "cpu_count": u.cpu_count,
                }
                for u in units
            ],
        },
        "cv_results": search_cv_results(search=search),
    }


class NotExportable(Exception):
    """The search has fits missing; its message says how many."""


def search_export_text(*, search: Search, fmt: str) -> str:
    """The export file's text: JSON (metadata + cv_results) or CSV (one row per candidate)."""
    payload = search_export(search=search)
    if payload["cv_results"] is None:
        raise NotExportable(
            f"search {search.pk} is {search.status} with {search.n_fits_done}/{search.n_fits} fits stored; "
            "results can be exported once every fit is in"
        )
    if fmt == "json":
        return json.dumps(payload, indent=2, allow_nan=False) + "\n"
    results = payload["cv_results"]
    columns = cv_results_columns(results)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for i in range(len(results["params"])):
        writer.writerow([_csv_cell(results[c][i], c == "params") for c in columns])
    return buf.getvalue()


def _csv_cell(value: Any, as_json: bool) -> Any:
    if as_json or isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def cv_results_columns(results: dict[str, list[Any]]) -> list[str]:
    """Column order for CSV: params, param_*, then scikit-learn's keys as they come."""
    keys = list(results)
    first = ["params"] + [k for k in keys if k.startswith("param_")]
    return first + [k for k in keys if k not in first]


def searches_unfinished(ids: Iterable[int]) -> list[int]:
    return list(Search.objects.filter(pk__in=list(ids)).exclude(status__in=FINISHED).values_list("pk", flat=True))

"""Finishing a search: progress counters, the next halving round, scikit-learn's aggregates and the best
candidate, stored once; the process that finishes a scaling study's run moves the study on."""

from __future__ import annotations

from typing import Any

from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from search.engine import aggregate, halving
from search.models import Candidate, Result, Search, Status, WorkUnit
from search.selectors.results import failure_summary, fits_in_order, search_accounting, search_cv_results
from search.selectors.searches import unit_warnings
from search.services.inserts import insert_ignoring_conflicts
from search.services.scaling import study_advance
from search.services.searches import search_enqueue, search_round_create

CELL_BATCH = 500  # candidates per counting query: far below SQLite's and PostgreSQL's parameter limits


def _cells(candidate_ids: list[int]) -> dict[tuple[int, int], tuple[bool, bool, bool]]:
    """(candidate, fold) → (failed, path reused, copied) of the stored fits of these candidates: a query bounded
    by the batch (the unique (candidate, fold) index), whatever the search holds."""
    failed = models.ExpressionWrapper(~models.Q(error=""), output_field=models.BooleanField())
    out: dict[tuple[int, int], tuple[bool, bool, bool]] = {}
    for start in range(0, len(candidate_ids), CELL_BATCH):
        rows = (
            Result.objects.filter(candidate_id__in=candidate_ids[start : start + CELL_BATCH]).annotate(failed=failed)
            .values_list("candidate_id", "fold", "failed", "path_reused", "reused")
        )  # fmt: skip
        out |= {(c, f): (bool(failed), saved, reused) for c, f, failed, saved, reused in rows}
    return out


def results_insert(*, search_id: int, rows: list[Result]) -> int:
    """Insert fits idempotently (a (candidate, fold) already stored is left as it is: docs/traps.md,
    at-least-once delivery) and move the search's progress counters by the fits really inserted, in one short
    transaction whose cost depends on the batch, not on how many fits the search holds. Returns that number.

    The batch's cells are read before and after the insert while the writers of this search are serialised
    (SQLite: the IMMEDIATE transaction's write lock; PostgreSQL: the search row, locked first), so two
    deliveries writing the same fits at once count each fit once. `search_finalize` recounts exactly."""
    if not rows:
        return 0
    candidate_ids = sorted({row.candidate_id for row in rows})
    with transaction.atomic():
        list(Search.objects.select_for_update(no_key=True).filter(pk=search_id).values_list("pk", flat=True))
        before = _cells(candidate_ids)
        insert_ignoring_conflicts(rows)  # bulk_create(…, ignore_conflicts=True) without its per-value cost
        after = _cells(candidate_ids)
        new = [flags for cell, flags in after.items() if cell not in before]
        if new:
            Search.objects.filter(pk=search_id).update(
                n_fits_done=F("n_fits_done") + len(new),
                n_fits_failed=F("n_fits_failed") + sum(failed for failed, _, _ in new),
                fits_saved=F("fits_saved") + sum(saved for _, saved, _ in new),
                fits_reused=F("fits_reused") + sum(reused for _, _, reused in new),
            )
    return len(new)


def search_refresh_progress(*, search_id: int) -> None:
    """The progress counters recounted over every stored fit of the search (exact; its cost grows with the
    search: once at the end, in `search_finalize`, while each write moves them with `results_insert`)."""
    done = Result.objects.filter(search_id=search_id).aggregate(
        n=models.Count("pk"), failed=models.Count("pk", filter=~models.Q(error="")),
        saved=models.Count("pk", filter=models.Q(path_reused=True)),
        reused=models.Count("pk", filter=models.Q(reused=True)),
    )  # fmt: skip
    Search.objects.filter(pk=search_id).update(
        n_fits_done=done["n"], n_fits_failed=done["failed"], fits_saved=done["saved"], fits_reused=done["reused"]
    )


def search_finalize(*, search_id: int) -> Search:
    """Once every unit is finished: aggregate scores into candidates and record the best, once."""
    search = Search.objects.get(pk=search_id)
    if search.is_finished or search.is_preparing:  # preparing: more units are coming (services.searches)
        return search
    units = list(search.units.all())
    if any(u.status in Status.ACTIVE for u in units):
        return search
    refit = next((u for u in units if u.kind == WorkUnit.Kind.REFIT), None)
    if refit is not None:  # the fits were aggregated when the refit was queued; the refit ends the search
        return _refit_finish(search, refit)
    search_refresh_progress(search_id=search_id)
    search.refresh_from_db()
    now = timezone.now()
    failed = [u for u in units if u.status == Status.FAILED]
    last_round = len(search.schedule.get("n_resources", [0])) - 1
    if not failed and search.strategy == "halving" and search.round < last_round and _halving_advance(search):
        search.refresh_from_db()
        return search
    results = None if failed else search_cv_results(search=search)
    if results is None:
        reason = "; ".join(f"unit {u.index}: {u.error}" for u in failed) or (
            f"{search.n_fits - search.n_fits_done} fits are missing"
        )
        changed = Search.objects.filter(pk=search_id, status__in=Status.ACTIVE).update(
            status=Status.FAILED, error=reason, finished_at=now
        )
    else:
        changed = _store_aggregates(search, results, next_index=max((u.index for u in units), default=-1) + 1)
    search.refresh_from_db()
    if changed and search.study_id:  # the process that finished this run moves its study on, once
        study_advance(study_id=search.study_id)
    return search


def _halving_advance(search: Search) -> bool:
    """Score the finished round, keep the best 1/factor as scikit-learn does, queue the next round.

    Returns False when the round's fits are incomplete. Idempotent: the round number is moved on by a
    conditional UPDATE, so two workers finishing the last units at once create the next round once."""
    itr = search.round
    cands = list(search.candidates.filter(round=itr).order_by("index"))
    fits = fits_in_order(Result.objects.filter(candidate__in=cands), len(cands) * search.n_splits)
    if fits is None:
        return False
    params = [c.params for c in cands]
    results = aggregate.cv_results(params, search.n_splits, fits, search.metrics)
    sched = halving.Schedule.from_dict(search.schedule)
    means = results[f"mean_test_{search.metrics[0]}"]
    kept = halving.keep(params, means, sched.n_candidates[itr + 1])
    hs = search.stored.halving
    assert hs is not None
    nxt = [halving.round_params(p, hs, sched.n_resources[itr + 1]) for p in kept]
    with transaction.atomic():
        moved = Search.objects.filter(pk=search.pk, round=itr, status__in=Status.ACTIVE)
        if not moved.update(round=itr + 1):
            return True
        for cand, mean in zip(cands, means, strict=True):  # the round's scores show while the next one runs
            cand.score = mean
        _update_rows(cands, ["score"])
        start = sum(sched.n_candidates[: itr + 1])
        units = search_round_create(search, nxt, round=itr + 1, start=start, n_resources=sched.n_resources[itr + 1])
        search_id = search.pk
        if _sent(search):
            transaction.on_commit(lambda: search_enqueue(search_id=search_id, units=units))
    return True


def _sent(search: Search) -> bool:
    """Whether the search's units went through the broker: new units (a halving round, the refit) go the same
    way. A search run here (`runsearch --local`, tests) runs them here too and sends none."""
    return search.units.exclude(q_task_id="").exists()


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


def _refit_finish(search: Search, unit: WorkUnit) -> Search:
    """Done once the refit unit is over: with its model, or with why the refit failed (the CV results stay)."""
    error = "" if unit.status == Status.DONE else f"the refit failed: {unit.error or unit.status}"
    changed = Search.objects.filter(pk=search.pk, status__in=Status.ACTIVE).update(
        status=Status.DONE, refit_error=error
    )
    search.refresh_from_db()
    if changed and search.study_id:
        study_advance(study_id=search.study_id)
    return search


def _store_aggregates(search: Search, results: dict[str, list[Any]], *, next_index: int) -> int:
    """Store the aggregates and the best candidate once; with `refit` on, queue the refit unit (index
    `next_index`: past the last unit's, not the count, which merged units make smaller) in the same
    transaction and leave the search running until it is over (returns 0 then: the search is not over)."""
    metrics: list[str] = search.metrics
    rts = search.stored.return_train_score
    if search.strategy == "halving":
        best = halving.best_index(results["iter"], results[f"mean_test_{search.refit_metric}"])
    else:
        failed = Result.objects.filter(search=search).exclude(error="").count()
        best = aggregate.best_index(results, search.refit_metric, every_fit_failed=failed >= search.n_fits)
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
            "warnings": unit_warnings(search),
            "busy_time": acc["busy"],
            "speedup": acc["speedup"],
            "efficiency": acc["efficiency"],
            "accounting": acc,
            "started_at": first_start.first() or search.started_at,
            "finished_at": last_end.first() or timezone.now(),
        }
        refit = best is not None and search.stored.refit is not False
        if best is None:
            update.update(status=Status.FAILED, error=f"every fit failed: {failure_summary(search)}")
        elif not refit:
            update.update(status=Status.DONE)
        # best_index is set once: a second process finishing the same search at once changes nothing
        changed = Search.objects.filter(pk=search.pk, status__in=Status.ACTIVE, best_index=None).update(**update)
        if changed and refit:
            assert best is not None
            unit = WorkUnit.objects.create(
                search=search, index=next_index, candidate_start=best, candidate_stop=best + 1, round=search.round,
                kind=WorkUnit.Kind.REFIT,
            )  # fmt: skip
            search_id = search.pk
            if _sent(search):
                transaction.on_commit(lambda: search_enqueue(search_id=search_id, units=[unit]))
            return 0
        return changed

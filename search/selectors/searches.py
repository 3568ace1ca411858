"""Read-side queries for the pages: what a user may see, progress, leaderboard, failures, chart rows.

Everything here aggregates in the database or over candidates, never over every fit row, so a search
with 10,000 candidates × 5 folds stays fast.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, FloatField, IntegerField, Max, Min, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone

from search.charts.accuracy import CandidateRow
from search.engine import stats
from search.models import Candidate, Result, Search, Status, WorkUnit
from search.selectors.models import refitting

User = AbstractBaseUser | AnonymousUser


def searches_for(user: User) -> QuerySet[Search]:
    """The user's searches with their data set's row, without its CSV bytes (up to FANOUT_MAX_UPLOAD_MB, on
    every list row, page and progress poll otherwise; `Dataset.local_path` loads them where they are needed)."""
    return Search.objects.filter(owner_id=user.pk).select_related("dataset").defer("dataset__content")


def search_for(user: User, pk: int) -> Search:
    """The user's own search, or 404 (another user's search is indistinguishable from a missing one)."""
    return get_object_or_404(searches_for(user), pk=pk)


SORTS: dict[str, str | OrderBy] = {
    "created": "created_at", "-created": "-created_at", "name": "name", "-name": "-name",
    "status": "status", "-status": "-status", "best": F("best_score").asc(nulls_last=True),
    "-best": F("best_score").desc(nulls_last=True), "estimator": "estimator", "-estimator": "-estimator",
}  # fmt: skip


def search_list(user: User, *, status: str = "", estimator: str = "", sort: str = "-created") -> QuerySet[Search]:
    qs = searches_for(user)
    if status in Status.values:
        qs = qs.filter(status=status)
    if estimator:
        qs = qs.filter(estimator=estimator)
    return qs.order_by(SORTS.get(sort, "-created_at"), "-id")


def estimators_used(user: User) -> list[str]:
    return list(searches_for(user).order_by("estimator").values_list("estimator", flat=True).distinct())


@dataclass(frozen=True)
class Busy:
    host: str
    worker_pid: int | None
    runner_pid: int | None
    processes: int | None
    fits_run: int
    unit: int


def progress(search: Search) -> dict[str, Any]:
    """Live state for the detail page: counts, elapsed and ETA, and which machines/processes are busy."""
    search.refresh_from_db(fields=["status", "n_fits_done", "n_fits_failed", "started_at", "finished_at",
                                   "best_score", "best_params", "cores_used", "error", "warnings", "speedup",
                                   "efficiency", "candidates_stored"])  # fmt: skip
    spans = Result.objects.filter(search=search).aggregate(first=Min("started_at"), last=Max("finished_at"))
    start = spans["first"] or search.started_at
    end = search.finished_at if search.is_finished else timezone.now()
    elapsed = (end - start).total_seconds() if start and end else 0.0
    done, total = search.n_fits_done, search.n_fits
    eta = elapsed / done * (total - done) if done and not search.is_finished else None
    running = WorkUnit.objects.filter(search=search, status=Status.RUNNING).order_by("index")
    units = Counter(WorkUnit.objects.filter(search=search).values_list("status", flat=True))
    return {
        "status": search.status, "done": done, "total": total, "failed": search.n_fits_failed,
        "percent": round(100 * done / total, 1) if total else 0.0, "elapsed": round(elapsed, 2),
        "eta": round(eta, 1) if eta is not None else None, "finished": search.is_finished,
        "best_score": search.best_score, "best_params": search.best_params, "cores_used": search.cores_used,
        "error": search.error, "units": dict(units), "server_time": time.time(),
        "busy": [
            Busy(u.host, u.worker_pid, u.runner_pid, u.processes_used, u.fits_run, u.index).__dict__ for u in running
        ],
        # order_by("host"): Result's default ordering would make DISTINCT run over (host, candidate, fold)
        "hosts": list(Result.objects.filter(search=search).order_by("host").values_list("host", flat=True).distinct()),
        "warnings": search.warnings or unit_warnings(search),
        "speedup": search.speedup, "efficiency": search.efficiency,
        "refitting": refitting(search), "preparing": preparing(search),
    }  # fmt: skip


def preparing(search: Search) -> dict[str, int] | None:
    """While a large search's candidates are stored in the background: how many are stored, of how many."""
    if not search.is_preparing:
        return None
    total = int((search.schedule or {}).get("n_candidates", [search.n_candidates])[0])  # round 0 (halving: its first)
    return {"stored": search.candidates_stored or 0, "total": total}


def unit_warnings(search: Search) -> list[str]:
    """Oversubscription and affinity warnings the runners reported (see engine.run.run_info)."""
    threads = WorkUnit.objects.filter(search=search).values_list("threads", flat=True)
    return sorted({w for t in threads for w in (t or {}).get("warnings", [])})


LEADERBOARD_SORTS: dict[str, tuple[str | OrderBy, ...]] = {
    "rank": (F("rank").asc(nulls_last=True), "index"), "-rank": (F("rank").desc(nulls_first=True), "index"),
    "index": ("index",), "-index": ("-index",),
    "fit": (F("mean_fit_time").asc(nulls_last=True), "index"),
    "-fit": (F("mean_fit_time").desc(nulls_last=True), "index"),
    "std": (F("std_fit_time").asc(nulls_last=True), "index"),
}  # fmt: skip


def leaderboard(search: Search, sort: str = "rank") -> QuerySet[Candidate]:
    return search.candidates.order_by(*LEADERBOARD_SORTS.get(sort, LEADERBOARD_SORTS["rank"]))


def reuse_by_candidate(search: Search, candidate_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per candidate of a leaderboard page: its fits copied from earlier searches and its path-reused fits.
    Empty (no query) for a search that reused nothing."""
    if not (search.fits_reused or search.fits_saved):
        return {}
    rows = (
        Result.objects.filter(search=search, candidate_id__in=candidate_ids).values("candidate_id")
        .annotate(copied=Count("id", filter=Q(reused=True)),
                  path_reused=Count("id", filter=Q(path_reused=True)))
    )  # fmt: skip
    return {r["candidate_id"]: {"copied": r["copied"], "path_reused": r["path_reused"]} for r in rows}


@dataclass(frozen=True)
class FailureGroup:
    message: str
    count: int
    candidates: list[dict[str, Any]]


def failures(search: Search, limit: int = 20) -> list[FailureGroup]:
    """Failed fits grouped by their error's last line, with the parameters that produced them."""
    rows = (
        Result.objects.filter(search=search).exclude(error="")
        .values("error", "candidate__params").annotate(n=Count("id")).order_by("-n")[:2000]
    )  # fmt: skip
    groups: dict[str, list[tuple[dict[str, Any], int]]] = defaultdict(list)
    for row in rows:
        groups[row["error"].strip().splitlines()[-1]].append((row["candidate__params"], row["n"]))
    out = [FailureGroup(msg, sum(n for _, n in items), [p for p, _ in items][:10]) for msg, items in groups.items()]
    return sorted(out, key=lambda g: -g.count)[:limit]


def candidate_rows(search: Search, metric: str | None = None) -> list[CandidateRow]:
    """One row per candidate with its aggregated scores for `metric` (default: the refit metric). Only that
    metric's values are read (the database extracts them from the JSON columns): 20,000 candidates stay fast."""
    m = metric or search.refit_metric
    if m not in search.metrics:
        return [CandidateRow(index=i, params=p, mean=None, std=None, rank=None) for i, p in _params(search)]

    def number(column: str) -> Cast:  # the database casts one key's value: no JSON decoded per value here
        return Cast(KeyTextTransform(m, column), IntegerField() if column == "rank_test" else FloatField())

    keys = [number(column) for column in ("mean_test", "std_test", "rank_test", "mean_train", "std_train")]
    rows = search.candidates.order_by("index").values_list("index", "params", *keys)
    return [
        CandidateRow(index=index, params=params, mean=mean, std=std, rank=rank, mean_train=mean_tr, std_train=std_tr)
        for index, params, mean, std, rank, mean_tr, std_tr in rows
    ]


def _params(search: Search) -> Iterable[tuple[int, dict[str, Any]]]:
    return search.candidates.order_by("index").values_list("index", "params")


def varied_params(search: Search) -> list[str] | None:
    """The spec's parameters that take more than one value across the stored candidates (as
    `charts.accuracy.varied_params`, asked of the database: at most two distinct values read per parameter);
    None without candidates."""
    if not search.candidates.exists():
        return None
    out = []
    for name in sorted(search.stored.varied):
        values = (
            search.candidates.filter(params__has_key=name).order_by().annotate(value=KeyTransform(name, "params"))
            .values_list("value", flat=True).distinct()[:2]
        )  # fmt: skip
        if len(values) > 1:
            out.append(name)
    return out


@dataclass(frozen=True)
class Challenger:
    index: int
    rank: int | None
    params: dict[str, Any]
    mean: float | None
    test: stats.PairedTest


@dataclass(frozen=True)
class BestComparison:
    """The best candidate against the next ones on the leaderboard, fold by fold (see `engine.stats`)."""

    best_index: int
    best_params: dict[str, Any]
    best_mean: float | None
    metric: str
    k: int
    n_train: int
    n_test: int
    alpha: float
    rows: list[Challenger]
    url: str = stats.EXAMPLE_URL


def best_comparison(search: Search, top: int = 10, alpha: float = 0.05) -> BestComparison | None:
    """Nadeau–Bengio corrected paired t-tests of the `top - 1` next-ranked candidates against the best.

    Only for a finished search with a best candidate; only candidates of the best one's halving round
    (the same folds on the same rows). n_test is the best candidate's first test fold, as in
    scikit-learn's example, and n_train = n - n_test with n the sum of its test folds' sizes: our
    splitters (KFold, StratifiedKFold) test every row exactly once, so n is the rows the folds split
    (the data set's n_samples, or a halving round's subsample).
    """
    if search.status != Status.DONE or search.best_index is None:
        return None
    best = search.candidates.filter(index=search.best_index).first()
    if best is None:
        return None
    others = list(
        search.candidates.filter(round=best.round).exclude(pk=best.pk)
        .order_by(F("rank").asc(nulls_last=True), "index")[: max(top - 1, 0)]
    )  # fmt: skip
    metric = search.refit_metric
    scores: dict[int, dict[int, float | None]] = defaultdict(dict)
    n_tests: dict[int, int] = {}
    rows = Result.objects.filter(candidate_id__in=[best.pk, *(c.pk for c in others)])
    for candidate_id, fold, test_scores, n_test_samples in rows.values_list(
        "candidate_id", "fold", "test_scores", "n_test_samples"
    ):
        scores[candidate_id][fold] = (test_scores or {}).get(metric)
        if candidate_id == best.pk:
            n_tests[fold] = n_test_samples
    folds = range(search.n_splits)
    if sorted(n_tests) != list(folds):
        return None
    n_test = n_tests[0]
    n_train = sum(n_tests.values()) - n_test
    best_scores = [scores[best.pk].get(j) for j in folds]
    challengers = [
        Challenger(
            index=c.index, rank=c.rank, params=c.params, mean=(c.mean_test or {}).get(metric),
            test=stats.corrected_ttest(
                best_scores, [scores[c.pk].get(j) for j in folds], n_train=n_train, n_test=n_test, alpha=alpha
            ),
        )
        for c in others
    ]  # fmt: skip
    return BestComparison(
        best_index=best.index, best_params=best.params, best_mean=(best.mean_test or {}).get(metric),
        metric=metric, k=search.n_splits, n_train=n_train, n_test=n_test, alpha=alpha, rows=challengers,
    )  # fmt: skip


@dataclass(frozen=True)
class HalvingRound:
    """One successive-halving round: its budget, its candidates' scores and the best of them."""

    round: int
    n_resources: int | None
    n_candidates: int
    planned: int
    best_index: int | None
    best_score: float | None
    best_params: dict[str, Any] | None
    scores: list[tuple[int, dict[str, Any], float | None]]  # (candidate index, params, mean test score)


def halving_rounds(search: Search) -> list[HalvingRound]:
    """The rounds run so far (and the ones still planned), from the stored candidates and schedule."""
    if search.strategy != "halving":
        return []
    by_round: dict[int, list[tuple[int, dict[str, Any], float | None]]] = {}
    rows = search.candidates.order_by("index").values_list("round", "index", "params", "score")
    for rnd, index, params, score in rows:
        by_round.setdefault(rnd, []).append((index, params, score))
    planned = search.schedule.get("n_candidates", [])
    resources = search.schedule.get("n_resources", [])
    out = []
    for i, n in enumerate(planned):
        scores = by_round.get(i, [])
        scored = [s for s in scores if s[2] is not None]
        best = max(scored, key=lambda s: s[2] or 0.0) if scored else None
        out.append(
            HalvingRound(
                round=i, n_resources=resources[i] if i < len(resources) else None, n_candidates=len(scores),
                planned=n, best_index=best[0] if best else None, best_score=best[2] if best else None,
                best_params=best[1] if best else None, scores=scores,
            )
        )  # fmt: skip
    return out


def searches_unfinished(ids: Iterable[int]) -> list[int]:
    return list(
        Search.objects.filter(pk__in=list(ids)).exclude(status__in=Status.FINISHED).values_list("pk", flat=True)
    )

"""Read-side queries for the pages: what a user may see, progress, leaderboard, failures, chart rows.

Everything here aggregates in the database or over candidates, never over every fit row, so a search
with 10,000 candidates × 5 folds stays fast.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, Max, Min, QuerySet
from django.db.models.expressions import OrderBy
from django.shortcuts import get_object_or_404
from django.utils import timezone

from search.models import Candidate, Result, Search, Status, WorkUnit
from search.plots import CandidateRow

User = AbstractBaseUser | AnonymousUser


def searches_for(user: User) -> QuerySet[Search]:
    return Search.objects.filter(owner_id=user.pk).select_related("dataset")


def search_for(user: User, pk: int) -> Search:
    """The user's own search, or 404 (another user's search is indistinguishable from a missing one)."""
    return get_object_or_404(Search.objects.select_related("dataset"), pk=pk, owner_id=user.pk)


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
                                   "efficiency"])  # fmt: skip
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
        "hosts": sorted(set(Result.objects.filter(search=search).values_list("host", flat=True).distinct())),
        "warnings": search.warnings or unit_warnings(search),
        "speedup": search.speedup, "efficiency": search.efficiency,
    }  # fmt: skip


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


def fit_labels(search: Search) -> list[str]:
    """ "candidate i, fold k" per fit, in the order of `services.search_spans`."""
    rows = Result.objects.filter(search=search).order_by("pk").values_list("candidate__index", "fold")
    return [f"candidate {c}, fold {f}" for c, f in rows]


def candidate_rows(search: Search, metric: str | None = None) -> list[CandidateRow]:
    """One row per candidate with its aggregated scores for `metric` (default: the refit metric)."""
    m = metric or search.refit_metric
    fields = ("index", "params", "mean_test", "std_test", "rank_test", "mean_train", "std_train")
    out = []
    for index, params, mean, std, rank, mean_tr, std_tr in search.candidates.order_by("index").values_list(*fields):
        out.append(
            CandidateRow(
                index=index, params=params, mean=(mean or {}).get(m), std=(std or {}).get(m),
                rank=(rank or {}).get(m), mean_train=(mean_tr or {}).get(m), std_train=(std_tr or {}).get(m),
            )
        )  # fmt: skip
    return out

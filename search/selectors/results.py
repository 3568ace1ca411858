"""A search's stored fits read back: `cv_results_` in scikit-learn's layout, fit spans for accounting and
the timeline, the failure summary. Nothing here writes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import models

from search.engine import aggregate, speedup
from search.models import Result, Search


def fits_in_order(results: models.QuerySet[Result], expected: int) -> list[aggregate.Fit] | None:
    """`results` as `aggregate.Fit`s in GridSearchCV's order; None unless all `expected` fits are stored."""
    rows = results.order_by("candidate__index", "fold").values_list(
        "test_scores", "train_scores", "fit_time", "score_time"
    )
    fits = [aggregate.Fit(t, tr, ft, st) for t, tr, ft, st in rows]
    return fits if len(fits) == expected else None


def search_cv_results(*, search: Search) -> dict[str, list[Any]] | None:
    """`cv_results_` of a search whose fits are all stored; None while fits are missing."""
    fits = fits_in_order(Result.objects.filter(search=search), search.n_fits)
    if fits is None:
        return None
    rows = list(search.candidates.order_by("index").values_list("params", "round", "n_resources"))
    results = aggregate.cv_results(
        [p for p, _, _ in rows], search.n_splits, fits, search.metrics, search.stored.return_train_score
    )
    if search.strategy == "halving":  # HalvingGridSearchCV puts its two extra keys first
        return {"iter": [i for _, i, _ in rows], "n_resources": [r for _, _, r in rows], **results}
    return results


def _computed(search: Search) -> models.QuerySet[Result]:
    """The fits this search computed: copies of earlier searches' fits (`reused`) spent their time elsewhere."""
    return Result.objects.filter(search=search, reused=False).order_by("pk")


def search_spans(search: Search) -> list[speedup.FitSpan]:
    """Every fit this search computed, for accounting and the timeline (one small tuple per fit)."""
    rows = _computed(search).values_list("host", "pid", "started_at", "finished_at", "fit_time", "score_time")
    return [speedup.FitSpan(h, p, a.timestamp(), b.timestamp(), ft + st) for h, p, a, b, ft, st in rows]


def labelled_spans(search: Search) -> tuple[list[speedup.FitSpan], list[str]]:
    """`search_spans` and a "candidate i, fold k" label per span, read from the same rows in one query (two
    queries would disagree while fits stream in)."""
    rows = _computed(search).values_list(
        "host", "pid", "started_at", "finished_at", "fit_time", "score_time", "candidate__index", "fold"
    )
    spans, labels = [], []
    for h, p, a, b, ft, st, c, f in rows:
        spans.append(speedup.FitSpan(h, p, a.timestamp(), b.timestamp(), ft + st))
        labels.append(f"candidate {c}, fold {f}")
    return spans, labels


def search_accounting(search: Search) -> dict[str, Any]:
    """Wall time, busy time, speedup, efficiency, per machine and per process (see engine.speedup)."""
    acc = speedup.account(search_spans(search))
    acc.pop("start", None)
    acc.pop("end", None)
    return acc


def failure_summary(search: Search) -> str:
    errors = Counter(Result.objects.filter(search=search).exclude(error="").values_list("error", flat=True))
    return "; ".join(f"{n}× {msg.splitlines()[-1]}" for msg, n in errors.most_common(3))

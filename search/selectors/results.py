"""A search's stored fits read back: `cv_results_` in scikit-learn's layout, fit spans for accounting and
the timeline, the failure summary. Nothing here writes."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.db.models import Count, F, FloatField, Func, Max, Min, Sum

from search.engine import aggregate, speedup
from search.models import Result, Search


def fits_in_order(results: models.QuerySet[Result], expected: int) -> list[aggregate.Fit] | None:
    """`results` as `aggregate.Fit`s in GridSearchCV's order; None unless all `expected` fits are stored."""
    rows = results.order_by("candidate__index", "fold").values_list(
        "test_scores", "train_scores", "fit_time", "score_time"
    )  # read in chunks (10^5 fits: never the rows and the fits in memory at once)
    fits = [aggregate.Fit(t, tr, ft, st) for t, tr, ft, st in rows.iterator(chunk_size=5000)]
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
    """Every fit this search computed, for accounting and the timeline (one small tuple per fit). A fit whose
    forest was built in several threads (its unit's `threads.fit_threads`, engine.schedule) holds that many
    cores: its busy time is its fit time on each of them, plus its one-thread scoring."""
    threads = {pk: int((t or {}).get("fit_threads") or 1) for pk, t in search.units.values_list("pk", "threads")}
    rows = _computed(search).values_list(
        "host", "pid", "started_at", "finished_at", "fit_time", "score_time", "unit_id"
    )
    return [
        speedup.FitSpan(h, p, a.timestamp(), b.timestamp(), ft * threads.get(u, 1) + st, threads.get(u, 1))
        for h, p, a, b, ft, st, u in rows
    ]


class Epoch(Func):
    """A timestamp as float seconds since 1970, computed by the database: 10^5 rows read as floats, without a
    datetime parsed per row (most of a large search's chart time). Resolution: microseconds on PostgreSQL, tens
    of microseconds on SQLite (julianday), plenty for charts; the stored accounting uses `search_spans`."""

    output_field = FloatField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8")


def computed_count(search: Search) -> int:
    return _computed(search).count()


def process_count(search: Search) -> int:
    """Distinct pids that computed fits (the utilisation chart's line when `cores_used` is not stored yet)."""
    return _computed(search).order_by().values("pid").distinct().count()


Lane = tuple[str, int]


@dataclass(frozen=True)
class BinnedBusy:
    """Busy seconds per time bin (per process lane, or summed over them): what the timeline's heatmap and the
    utilisation chart draw, summed in the database instead of read fit by fit."""

    start: float  # the first fit's start (unix s)
    width: float  # seconds per bin
    n_fits: int
    busy: dict[Lane | None, list[float]]  # lane (None: every lane together) -> busy seconds per bin


# One pass over a search's fits: each fit's start and end as seconds from the first start (computed once per row:
# a materialised CTE), its first bin, and its time in that bin and in the next, summed per (lane,) bin; the fits
# longer than a bin come back one by one, with their start and end. {floor}, {least}, {greatest}: the vendor's.
_BINNED_SQL = """
WITH f AS {materialized} (
    SELECT host, pid, {epoch_start} - %(t0)s AS s, {epoch_end} - %(t0)s AS e
    FROM {table} WHERE search_id = %(search)s AND NOT reused
), g AS {materialized} (
    SELECT host, pid, s, {greatest}(e, s) AS e, {floor}(s / %(width)s) AS b FROM f
)
SELECT {lane} b, SUM({least}(e, (b + 1) * %(width)s) - s), SUM({greatest}(e - (b + 1) * %(width)s, 0.0)),
       NULL, NULL
FROM g WHERE e - s <= %(width)s GROUP BY {lane} b
UNION ALL
SELECT {lane} b, NULL, NULL, s, e FROM g WHERE e - s > %(width)s
"""


def _binned_sql(vendor: str, per_lane: bool) -> str:
    table = Result._meta.db_table
    if vendor == "sqlite":

        def epoch(col: str) -> str:
            return f"((julianday({col}) - 2440587.5) * 86400.0)"

        spelling = {"floor": "CAST", "least": "MIN", "greatest": "MAX", "materialized": "MATERIALIZED"}
    else:

        def epoch(col: str) -> str:
            return f"EXTRACT(EPOCH FROM {col})::float8"

        spelling = {"floor": "FLOOR", "least": "LEAST", "greatest": "GREATEST", "materialized": "MATERIALIZED"}
    sql = _BINNED_SQL.format(
        table=table, epoch_start=epoch("started_at"), epoch_end=epoch("finished_at"),
        lane="host, pid," if per_lane else "", **spelling,
    )  # fmt: skip
    return sql.replace("CAST(s / %(width)s)", "CAST(s / %(width)s AS INTEGER)")  # SQLite: s >= 0, truncation is floor


def binned_busy(search: Search, bins: int, per_lane: bool) -> BinnedBusy:
    """Each computed fit's time spread exactly over the `bins` equal bins from the first start to the last end.

    A fit no longer than a bin touches at most two bins: the database sums its part in its first bin and the rest
    in the next, grouped by (lane,) bin, in one pass; the few longer fits (at most about `bins` per lane unless they
    overlap) are read and spread here."""
    span = _computed(search).order_by().aggregate(t0=Min("started_at"), t1=Max("finished_at"), n=Count("id"))
    if not span["n"]:
        return BinnedBusy(0.0, 1.0, 0, {})
    t0, n = span["t0"].timestamp(), int(span["n"])
    width = max(span["t1"].timestamp() - t0, 1e-9) / bins
    busy: dict[Lane | None, list[float]] = defaultdict(lambda: [0.0] * bins)

    def add(key: Lane | None, b: int, seconds: float) -> None:
        busy[key][min(max(b, 0), bins - 1)] += seconds

    with connection.cursor() as cursor:
        cursor.execute(_binned_sql(connection.vendor, per_lane), {"t0": t0, "width": width, "search": search.pk})
        for row in cursor.fetchall():
            key = (row[0], row[1]) if per_lane else None
            b, first, rest, s, e = row[-5:]
            if s is None:  # a (lane,) bin's sums
                add(key, int(b), float(first))
                if rest:
                    add(key, int(b) + 1, float(rest))
                continue
            for k in range(int(b), min(int(e / width), bins - 1) + 1):  # a long fit, s and e from t0
                add(key, k, max(0.0, min((k + 1) * width, e) - max(k * width, s)))
    return BinnedBusy(t0, width, n, dict(busy))


def process_busy(search: Search) -> dict[str, Any]:
    """The busy-time chart's accounting (wall, and per machine per process busy seconds, fits, span), summed in
    the database: one row per process, not per fit."""
    rows = (
        _computed(search).order_by().values("host", "pid")
        .annotate(busy=Sum(F("fit_time") + F("score_time")), fits=Count("id"), first=Min(Epoch("started_at")),
                  last=Max(Epoch("finished_at")))
    )  # fmt: skip
    machines: dict[str, dict[str, Any]] = {}
    first, last = None, None
    for r in sorted(rows, key=lambda r: (r["host"], r["pid"])):
        m = machines.setdefault(r["host"], {"busy": 0.0, "fits": 0, "processes": {}})
        m["busy"] += r["busy"]
        m["fits"] += r["fits"]
        m["processes"][str(r["pid"])] = {"busy": r["busy"], "fits": r["fits"], "span": r["last"] - r["first"]}
        first = r["first"] if first is None else min(first, r["first"])
        last = r["last"] if last is None else max(last, r["last"])
    return {"wall": (last - first) if first is not None and last is not None else 0.0, "machines": machines}


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

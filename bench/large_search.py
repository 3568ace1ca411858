"""A search of 100,000 fits and up: creation (request side and background), end to end, database size and
the wall time of every detail-page URL, chart endpoint and export.

Run: `.venv/bin/python bench/large_search.py [--fits 100000] [--repeats 3] [--synthetic] [--prepare-only]`.

The search is DecisionTreeClassifier on iris, 5 folds, `--fits / 5` candidates (max_depth × min_samples_leaf ×
ccp_alpha; `--fits` must be a multiple of 1000). By default it runs for real: an isolated temp dir, `migrate`, a
real qcluster (`bench.common.bench_cluster`); this process, on the same SQLite file, creates the search through
`services.searches.search_create` as the new-search view does (timed: the request side) and polls until every
candidate is stored (the background creation task) and until the search is done (end to end). `--synthetic`
stores the same search without a cluster (the background task's `search_prepare` run here, timed) and writes its
fits as a worker would (two processes, 2.5 ms per fit), for the page times without the fitting. `--prepare-only`
stops once the candidates and units are stored (a dry check of the creation path for `--fits 1000000`).

Every URL is fetched with Django's test client in-process, median of `--repeats` requests. Printed: the load
average before and after (other work on the machine shows in every number). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/large_search.py` finds `bench`

from bench.common import SHARED_VARS, BenchError, bench_cluster, bench_main, load_line, make_env, manage, run

FOLDS = 5
TARGET = 1.0  # seconds, every page and chart


def spec_for(n_fits: int, refit: bool = True) -> dict[str, Any]:
    """DecisionTreeClassifier on iris with exactly `n_fits / 5` candidates (and the best one refitted)."""
    n_candidates = n_fits // FOLDS
    if n_fits % 1000 or n_candidates < 200:
        raise SystemExit("--fits must be a multiple of 1000")
    grid = {
        "max_depth": list(range(1, 21)),
        "min_samples_leaf": list(range(1, 11)),
        "ccp_alpha": [round(i * 1e-5, 6) for i in range(n_candidates // 200)],
    }
    return {"name": f"large-{n_fits}", "estimator": "DecisionTreeClassifier", "param_grid": grid,
            "dataset": "iris", "cv": FOLDS, "n_jobs": -1, "refit": refit}  # fmt: skip


def urls(pk: int) -> dict[str, str]:
    base = f"/searches/{pk}"
    return {
        "detail page (HTML)": f"{base}/",
        "progress.json": f"{base}/progress.json",
        "leaderboard, page 1 by rank": f"{base}/leaderboard/?sort=rank",
        "leaderboard, last page by fit time": f"{base}/leaderboard/?sort=-fit&page=9999",
        "chart: score vs max_depth": f"{base}/charts/param.json?param=max_depth",
        "chart: heatmap": f"{base}/charts/heatmap.json?x=max_depth&y=ccp_alpha",
        "chart: parallel coordinates": f"{base}/charts/parallel.json",
        "chart: train vs test": f"{base}/charts/train-test.json",
        "chart: rounds": f"{base}/charts/rounds.json",
        "chart: timeline": f"{base}/charts/timeline.json",
        "chart: utilisation": f"{base}/charts/utilisation.json",
        "chart: busy time": f"{base}/charts/busy.json",
        "chart: scaling": f"{base}/charts/scaling.json",
        "export CSV (streamed)": f"{base}/export.csv",
        "export JSON (streamed)": f"{base}/export.json",
        "searches list": "/",
    }


def timed(client: Any, url: str, repeats: int) -> tuple[float, int]:
    """Median seconds of `repeats` GETs (the whole body read, streamed or not) and the body's size."""
    times, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        times.append(time.perf_counter() - started)
        size = len(body)
        if response.status_code != 200:
            raise BenchError(f"{url}: HTTP {response.status_code}: {body[:200]!r}")
    return statistics.median(times), size


def db_size(var_dir: Path) -> int:
    return sum(p.stat().st_size for p in var_dir.glob("*.sqlite3*"))


def setup_django(env: dict[str, str]) -> None:
    for name in SHARED_VARS:
        os.environ.pop(name, None)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()


def synthetic_fits(search: Any) -> None:
    """Every fit stored as a worker would, two processes side by side, 2.5 ms per fit; then aggregated."""
    import random

    from search.models import Candidate, Result, Status, WorkUnit
    from search.services.finalize import search_finalize

    rng = random.Random(0)
    t0 = datetime.now(tz=UTC)
    unit = search.units.first()
    batch: list[Result] = []
    ids = Candidate.objects.filter(search=search).order_by("index").values_list("pk", flat=True).iterator()
    for i, (cid, fold) in enumerate((c, f) for c in ids for f in range(FOLDS)):
        start = t0 + timedelta(seconds=(i // 2) * 0.0025)
        batch.append(Result(
            search=search, candidate_id=cid, fold=fold, unit=unit, test_scores={"score": rng.uniform(0.6, 0.99)},
            fit_time=0.002, score_time=0.0004, started_at=start, finished_at=start + timedelta(seconds=0.0024),
            host="bench", pid=100 + i % 2, n_test_samples=30,
        ))  # fmt: skip
        if len(batch) == 5000:
            Result.objects.bulk_create(batch)
            batch = []
    Result.objects.bulk_create(batch)
    WorkUnit.objects.filter(search=search).update(status=Status.DONE, processes_used=2)
    search_finalize(search_id=search.pk)


def wait(search_id: int, done: Any, what: str, timeout: float) -> float:
    """Seconds until `done(row)` holds for the search's row (polled every 0.25 s)."""
    from search.models import Search

    started = time.perf_counter()
    while not done(Search.objects.get(pk=search_id)):
        if time.perf_counter() - started > timeout:
            raise BenchError(f"search {search_id}: {what} not reached in {timeout:.0f} s")
        time.sleep(0.25)
    return time.perf_counter() - started


def measure(var_dir: Path, args: argparse.Namespace, real: bool) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from search.models import Search, Status
    from search.services.searches import plan_search, search_create, search_prepare

    print(load_line("before"))
    user = User.objects.create_user("bench", password=secrets.token_urlsafe(16))
    size_before = db_size(var_dir)
    started = time.perf_counter()
    plan = plan_search(spec_for(args.fits, refit=real))  # synthetic fits: no model to refit
    planned = time.perf_counter()
    search = search_create(plan=plan, owner=user)  # as the view: without a cluster, its task message just waits
    request = time.perf_counter() - started
    print(f"{args.fits:,} fits ({search.n_candidates:,} candidates x {FOLDS} folds)")
    plan_s = planned - started
    print(f"create, request side: {request:.2f} s (plan_search, as the form: {plan_s:.2f} s; search_create: "
          f"{request - plan_s:.2f} s), {search.candidates.count():,} candidates stored")  # fmt: skip
    if real:
        background = wait(search.pk, lambda s: s.candidates_stored is None, "every candidate stored", 3600)
        print(f"create, background task: every candidate and unit stored {background:.2f} s later")
        end = wait(search.pk, lambda s: s.status in Status.FINISHED, "finished", 6 * 3600)
        search.refresh_from_db()
        print(f"end to end (create to done): {request + background + end:.1f} s; status {search.status}")
        print(f"accounting: speedup {search.speedup or 0:.2f}, efficiency {100 * (search.efficiency or 0):.0f} %, "
              f"wall {search.accounting.get('wall', 0):.1f} s, busy {search.busy_time or 0:.1f} s")  # fmt: skip
    else:
        started = time.perf_counter()
        while search_prepare(search_id=search.pk, enqueue=False, max_batches=10):
            pass
        print(f"create, background path run inline: {time.perf_counter() - started:.2f} s")
        search.refresh_from_db()
        print(f"{search.candidates.count():,} candidates, {search.units.count()} units stored")
        if args.prepare_only:
            return
        started = time.perf_counter()
        synthetic_fits(search)
        print(f"synthetic fits written and aggregated: {time.perf_counter() - started:.1f} s")
        search = Search.objects.get(pk=search.pk)
    connection.close()
    print(f"database: {db_size(var_dir) / 1e6:.1f} MB (before the search: {size_before / 1e6:.1f} MB)")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    print(f"\nmedian of {args.repeats} requests, Django test client in-process, SQLite (WAL)")
    slowest = 0.0
    for label, url in urls(search.pk).items():
        seconds, size = timed(client, url, args.repeats)
        slowest = max(slowest, seconds) if "export" not in label else slowest
        print(f"{label:<38} {seconds * 1000:>9.1f} ms {size / 1e3:>10.1f} kB")
    print(f"slowest page or chart: {slowest * 1000:.0f} ms (target < {TARGET * 1000:.0f} ms)")
    print(load_line("after"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fits", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--synthetic", action="store_true", help="write the fits instead of running them")
    mode.add_argument("--prepare-only", action="store_true", help="store the candidates and units, then stop")
    args = parser.parse_args(argv)
    spec_for(args.fits)  # refuse a bad --fits before anything starts

    def body() -> None:
        if args.synthetic or args.prepare_only:
            with tempfile.TemporaryDirectory(prefix="fanout-large-") as tmp:
                env = make_env(Path(tmp), "large")
                run(manage("migrate", "--no-input"), env, "migrate")
                setup_django(env)
                measure(Path(tmp), args, real=False)
            return
        with bench_cluster("large") as bench:
            setup_django(bench.env)
            measure(bench.var_dir, args, real=True)

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

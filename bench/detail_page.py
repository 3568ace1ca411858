"""How fast a search's detail page and its data endpoints answer for 10,000 candidates × 5 folds.

Run: `.venv/bin/python bench/detail_page.py [--candidates 10000] [--repeats 5]`.
The fits are synthetic (this measures the web side, not scikit-learn): a real search is created and
validated (SVC, C × gamma grid), 5 result rows per candidate are written as a worker would, and the
search is aggregated by the real `search_finalize`. The baseline is the same pages for a 10-candidate
search in the same run; the ratio shows how the pages scale.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def setup_django(var_dir: str) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "FANOUT_SQLITE_PATH", "FANOUT_CACHE_DIR"):
        os.environ.pop(name, None)
    os.environ.update(FANOUT_VAR_DIR=var_dir, DJANGO_SECRET_KEY=secrets.token_urlsafe(32))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_search(owner: Any, n_candidates: int) -> Any:
    """A validated search of `n_candidates` with synthetic fits stored and aggregated."""
    from search.models import Candidate, Result, Status, WorkUnit
    from search.services.finalize import search_finalize
    from search.services.searches import plan_search, search_create

    side = math.isqrt(n_candidates)
    grid = {
        "C": [round(0.01 * (i + 1), 4) for i in range(side)],
        "gamma": [round(0.001 * (i + 1), 5) for i in range(side)],
    }
    spec = {"name": f"bench-{n_candidates}", "estimator": "SVC", "param_grid": grid, "dataset": "iris", "cv": 5}
    search = search_create(plan=plan_search(spec), owner=owner, enqueue=False)
    rng = random.Random(0)
    now = datetime.now(tz=UTC)
    unit = search.units.first()
    rows = [
        Result(
            search=search,
            candidate_id=cid,
            fold=fold,
            unit=unit,
            test_scores={"score": rng.uniform(0.6, 0.99)},
            fit_time=rng.uniform(0.01, 0.2),
            score_time=0.001,
            started_at=now,
            finished_at=now,
            host="bench",
            pid=1,
            n_test_samples=30,
        )
        for cid in Candidate.objects.filter(search=search).values_list("pk", flat=True)
        for fold in range(5)
    ]
    Result.objects.bulk_create(rows, batch_size=5000)
    WorkUnit.objects.filter(search=search).update(status=Status.DONE, processes_used=2)
    started = time.perf_counter()
    search = search_finalize(search_id=search.pk)
    print(f"{n_candidates:>6} candidates: aggregated {len(rows)} fits in {time.perf_counter() - started:.2f} s")
    return search


def pages(pk: int) -> dict[str, str]:
    return {
        "detail page (HTML)": f"/searches/{pk}/",
        "progress.json": f"/searches/{pk}/progress.json",
        "leaderboard, page 1 by rank": f"/searches/{pk}/leaderboard/?sort=rank",
        "leaderboard, last page by fit time": f"/searches/{pk}/leaderboard/?sort=-fit&page=9999",
        "chart: score vs C": f"/searches/{pk}/charts/param.json?param=C",
        "chart: heatmap C x gamma": f"/searches/{pk}/charts/heatmap.json?x=C&y=gamma",
        "chart: parallel coordinates": f"/searches/{pk}/charts/parallel.json",
        "searches list": "/",
    }


def timed(client: Any, url: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        body = response.content
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code, body[:200])
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as var_dir:
        setup_django(var_dir)
        from django.contrib.auth.models import User
        from django.test import Client

        user = User.objects.create_user("bench", password=secrets.token_urlsafe(16))
        small, big = make_search(user, 16), make_search(user, args.candidates)
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        print(f"\nmedian of {args.repeats} requests, Django test client in-process, SQLite (WAL)")
        print(f"{'page':<36} {small.n_candidates:>8} cand. {big.n_candidates:>8} cand.   ratio")
        total_small = total_big = 0.0
        for (label, url_small), url_big in zip(pages(small.pk).items(), pages(big.pk).values(), strict=True):
            t_small, t_big = timed(client, url_small, args.repeats), timed(client, url_big, args.repeats)
            total_small += t_small
            total_big += t_big
            print(f"{label:<36} {t_small * 1000:>10.1f} ms {t_big * 1000:>10.1f} ms {t_big / t_small:>7.1f}")
        print(f"{'everything the detail page loads':<36} {total_small * 1000:>10.1f} ms {total_big * 1000:>10.1f} ms")
        detail = timed(client, pages(big.pk)["detail page (HTML)"], args.repeats)
        print(f"\ndetail page for {big.n_candidates} candidates x 5 folds: {detail * 1000:.0f} ms (target < 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

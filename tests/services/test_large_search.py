"""A search above FANOUT_INLINE_CANDIDATES: created empty, filled by the background task in batches (once, whatever
the deliveries), shown as preparing; and the charts and export of a search with 20,000 fits stay aggregated."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from search.charts import speedup as speedup_charts
from search.engine.speedup import utilisation
from search.models import Candidate, Result, Search, Status, WorkUnit
from search.selectors.export import search_export, search_export_text
from search.services import searches as searches_service
from search.services.finalize import search_finalize
from search.services.searches import plan_search, search_cancel, search_create, search_prepare

# 10 × 4 = 40 candidates × 2 folds; units of 3 candidates (6 fits), batches of at most 8 candidates (2 units)
SPEC = {
    "estimator": "DecisionTreeClassifier", "dataset": "iris", "cv": 2,
    "param_grid": {"max_depth": list(range(1, 11)), "min_samples_leaf": [1, 2, 3, 4]},
}  # fmt: skip


@pytest.fixture
def large(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.FANOUT_INLINE_CANDIDATES = 10
    settings.FANOUT_MAX_FITS_PER_UNIT = 6
    monkeypatch.setattr(searches_service, "PREPARE_BATCH", 8)


def create_large(owner: User, django_capture_on_commit_callbacks: Any) -> Search:
    """Created as the new-search view creates it; the on-commit task message is captured, not sent."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        search = search_create(plan=plan_search(SPEC), owner=owner)
    assert callbacks, "the preparation (and the pilot) are enqueued on commit"
    return search


def assert_covered_once(search: Search) -> None:
    indices = list(search.candidates.order_by("index").values_list("index", flat=True))
    assert indices == list(range(search.n_candidates))
    ranges = list(search.units.order_by("index").values_list("candidate_start", "candidate_stop"))
    assert ranges[0][0] == 0 and ranges[-1][1] == search.n_candidates
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges)), "units overlap or leave a gap"
    assert list(search.units.order_by("index").values_list("index", flat=True)) == list(range(len(ranges)))


def test_a_large_search_is_stored_empty_and_the_task_fills_it_once(
    owner: User, large: None, django_capture_on_commit_callbacks: Any
) -> None:
    search = create_large(owner, django_capture_on_commit_callbacks)
    assert search.n_candidates == 40 and search.candidates.count() == 0 and search.units.count() == 0
    assert search.candidates_stored == 0 and search.is_preparing

    assert search_prepare(search_id=search.pk, enqueue=False) == 40
    search.refresh_from_db()
    assert search.candidates_stored is None and not search.is_preparing
    assert_covered_once(search)
    assert search.units.count() == 14  # ceil(40 / 3)

    assert search_prepare(search_id=search.pk, enqueue=False) == 0  # delivered twice: nothing added
    assert search.candidates.count() == 40 and search.units.count() == 14

    inline = search_create(plan=plan_search(SPEC), owner=owner, enqueue=False)  # below the task: the same rows
    assert inline.candidates_stored is None
    assert list(inline.candidates.values_list("index", "params")) == list(
        search.candidates.values_list("index", "params")
    )


def test_a_task_killed_midway_resumes_from_the_last_stored_batch(
    owner: User, large: None, django_capture_on_commit_callbacks: Any
) -> None:
    search = create_large(owner, django_capture_on_commit_callbacks)
    assert search_prepare(search_id=search.pk, enqueue=False, max_batches=2) == 12  # 2 batches of 2 units of 3
    search.refresh_from_db()
    assert search.candidates_stored == 12 == search.candidates.count()

    # its first units ran meanwhile; finishing them does not end a search whose other candidates are coming
    WorkUnit.objects.filter(search=search).update(status=Status.DONE)
    assert search_finalize(search_id=search.pk).status == Status.QUEUED

    assert search_prepare(search_id=search.pk, enqueue=False) == 28
    search.refresh_from_db()
    assert search.candidates_stored is None
    assert_covered_once(search)


def test_each_batch_s_units_are_enqueued_as_it_commits(
    owner: User, large: None, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[list[int]] = []
    monkeypatch.setattr(
        searches_service, "search_enqueue", lambda *, search_id, units: sent.append([u.index for u in units])
    )
    search = create_large(owner, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        search_prepare(search_id=search.pk)
    assert sent[0] == [0, 1] and sorted(i for batch in sent for i in batch) == list(range(14))


def test_a_search_cancelled_while_preparing_stores_no_more(
    owner: User, large: None, django_capture_on_commit_callbacks: Any
) -> None:
    search = create_large(owner, django_capture_on_commit_callbacks)
    search_prepare(search_id=search.pk, enqueue=False, max_batches=1)
    assert search_cancel(search=search)
    assert search_prepare(search_id=search.pk, enqueue=False) == 0
    assert Candidate.objects.filter(search=search).count() == 6


def test_not_enqueuing_stores_every_candidate_inline(owner: User, large: None) -> None:
    search = search_create(plan=plan_search(SPEC), owner=owner, enqueue=False)  # runsearch --local, the tests
    assert search.candidates_stored is None
    assert_covered_once(search)


def test_the_page_shows_the_preparing_search_filling(
    web: Client, owner: User, large: None, django_capture_on_commit_callbacks: Any
) -> None:
    search = create_large(owner, django_capture_on_commit_callbacks)
    search_prepare(search_id=search.pk, enqueue=False, max_batches=1)
    page = web.get(f"/searches/{search.pk}/")
    assert page.status_code == 200
    assert 'Preparing: <span id="p-stored">6</span> of 40 candidates stored' in page.content.decode()
    progress = web.get(f"/searches/{search.pk}/progress.json").json()
    assert progress["preparing"] == {"stored": 6, "total": 40}
    search_prepare(search_id=search.pk, enqueue=False)
    assert web.get(f"/searches/{search.pk}/progress.json").json()["preparing"] is None


# --- 20,000 fits: the charts aggregate, the export streams ---------------------------------------------------------

BIG = {
    "estimator": "DecisionTreeClassifier", "dataset": "iris", "cv": 5, "refit": False,
    "param_grid": {"max_depth": list(range(1, 41)), "min_samples_leaf": list(range(1, 101))},
}  # fmt: skip
LANES = 4


@pytest.fixture
def many_fits(owner: User) -> tuple[Search, list[Result]]:
    """4,000 candidates × 5 folds = 20,000 synthetic fits on 4 processes, each lane's fits one after another."""
    search = search_create(plan=plan_search(BIG), owner=owner, enqueue=False)
    rng = random.Random(0)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = list(search.candidates.order_by("index").values_list("pk", flat=True))
    rows = []
    for i, (cid, fold) in enumerate((c, f) for c in ids for f in range(5)):
        start = t0 + timedelta(seconds=(i // LANES) * 0.01)
        rows.append(Result(
            search=search, candidate_id=cid, fold=fold, test_scores={"score": rng.uniform(0.5, 1.0)},
            fit_time=0.006, score_time=0.002, started_at=start, finished_at=start + timedelta(seconds=0.008),
            host="h", pid=10 + i % LANES, n_test_samples=30,
        ))  # fmt: skip
    Result.objects.bulk_create(rows, batch_size=5000)
    WorkUnit.objects.filter(search=search).update(status=Status.DONE, processes_used=LANES)
    return search_finalize(search_id=search.pk), rows


def test_the_charts_of_20000_fits_are_aggregated_and_keep_the_totals(
    web: Client, many_fits: tuple[Search, list[Result]]
) -> None:
    search, rows = many_fits
    assert search.status == Status.DONE
    busy = sum(r.fit_time + r.score_time for r in rows)

    timeline = web.get(f"/searches/{search.pk}/charts/timeline.json").json()
    (heat,) = timeline["data"]
    assert heat["type"] == "heatmap" and "20000 fits" in timeline["layout"]["title"]["text"]
    assert len(heat["y"]) == LANES and all(len(z) <= speedup_charts.MAX_BINS for z in heat["z"])
    width = heat["x"][0] * 2
    covered = sum(v for z in heat["z"] for v in z) * width  # each lane's fits never overlap: fractions add up
    assert covered == pytest.approx(busy, rel=1e-3)

    util = web.get(f"/searches/{search.pk}/charts/utilisation.json").json()
    line = util["data"][0]
    assert len(line["x"]) <= 200
    assert sum(line["y"]) * line["x"][0] * 2 == pytest.approx(busy, rel=1e-3)  # mean running × bin = busy

    bars = web.get(f"/searches/{search.pk}/charts/busy.json").json()["data"][0]
    assert len(bars["x"]) == LANES
    assert sum(bars["y"]) == pytest.approx(busy) and sum(f for f, _ in bars["customdata"]) == len(rows)

    parallel = web.get(f"/searches/{search.pk}/charts/parallel.json").json()
    assert len(parallel["data"][0]["dimensions"][0]["values"]) <= 10_000


def test_the_database_bins_agree_with_the_bins_computed_from_every_span(
    many_fits: tuple[Search, list[Result]],
) -> None:
    from search.selectors.results import binned_busy, search_spans

    search, _ = many_fits
    spans = search_spans(search)
    binned = binned_busy(search, 200, per_lane=False)
    _, running = utilisation(spans, bins=200)
    assert binned.n_fits == len(spans) == 20_000
    assert [v / binned.width for v in binned.busy[None]] == pytest.approx(running, rel=1e-3)  # julianday: ~50 µs
    lanes, _, z = speedup_charts.busy_fractions(spans, speedup_charts.MAX_BINS)
    per_lane = binned_busy(search, speedup_charts.MAX_BINS, per_lane=True)
    heat = speedup_charts.timeline_binned(per_lane.busy, per_lane.width, per_lane.n_fits)["data"][0]  # type: ignore[arg-type]
    assert heat["y"] == lanes
    assert [v for row in heat["z"] for v in row] == pytest.approx([v for row in z for v in row], abs=5e-3)


def test_the_export_of_20000_fits_is_streamed_with_the_same_bytes(
    web: Client, many_fits: tuple[Search, list[Result]]
) -> None:
    search, _ = many_fits
    response = web.get(f"/searches/{search.pk}/export.json")
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body.decode() == json.dumps(search_export(search=search), indent=2, allow_nan=False) + "\n"
    csv_response = web.get(f"/searches/{search.pk}/export.csv")
    assert csv_response.streaming
    csv_body = b"".join(csv_response.streaming_content).decode()  # type: ignore[attr-defined]
    assert csv_body == search_export_text(search=search, fmt="csv") and csv_body.count("\r\n") == 4001

"""The speedup half of the detail page: accounting numbers, live timeline, warnings, scaling studies."""

from __future__ import annotations

import os

import joblib
import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from search.models import Result, ScalingStudy, Search, Status
from tests.conftest import create_search, run_inline

pytestmark = pytest.mark.django_db
SPEC = {"name": "rf", "estimator": "RandomForestClassifier", "params": {"random_state": 0},
        "param_grid": {"n_estimators": [10, 30, 50]}, "dataset": "iris", "cv": 3}  # fmt: skip


def test_accounting_is_consistent_with_the_stored_fits(owner: User) -> None:
    search = run_inline(create_search(SPEC, owner=owner))
    rows = list(Result.objects.filter(search=search).values_list("fit_time", "score_time", "started_at", "finished_at"))
    # a forest built in several threads (engine.schedule; its unit says how many) took its fit time on each core
    threads = search.units.get(kind="cv").threads.get("fit_threads", 1)
    busy = sum(f * threads + s for f, s, _, _ in rows)
    wall = (max(r[3] for r in rows) - min(r[2] for r in rows)).total_seconds()
    assert search.busy_time == pytest.approx(busy)
    assert search.accounting["wall"] == pytest.approx(wall, abs=1e-5)
    assert search.speedup == pytest.approx(busy / search.accounting["wall"])
    assert search.speedup is not None and search.cores_used
    assert search.efficiency == pytest.approx(search.speedup / search.cores_used)
    machine = next(iter(search.accounting["machines"].values()))
    assert machine["fits"] == 9 and machine["busy"] == pytest.approx(busy)
    per_process = sum(p["busy"] for p in machine["processes"].values())
    assert per_process == pytest.approx(busy)


def test_speedup_charts(web: Client, owner: User) -> None:
    search = run_inline(create_search(SPEC, owner=owner))
    timeline = web.get(reverse("search-chart", args=[search.pk, "timeline"])).json()
    assert timeline["data"][0]["orientation"] == "h" and len(timeline["data"][0]["x"]) == 9
    assert any("candidate 0, fold 0" in str(cd) for cd in timeline["data"][0]["customdata"])
    assert web.get(reverse("search-chart", args=[search.pk, "utilisation"])).json()["data"]
    assert web.get(reverse("search-chart", args=[search.pk, "busy"])).json()["data"]
    empty = web.get(reverse("search-chart", args=[search.pk, "scaling"])).json()
    assert not empty["data"]
    page = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "Run a scaling study" in page and f"{search.speedup:.2f}×" in page


def test_oversubscription_is_recorded_and_shown(web: Client, owner: User) -> None:
    n_jobs = 2 * joblib.cpu_count()  # twice the cores this machine grants: oversubscribed whatever their number
    search = run_inline(create_search({**SPEC, "n_jobs": n_jobs}, owner=owner))
    assert search.warnings and f"oversubscribed: 1 worker(s) x {n_jobs} processes" in search.warnings[0]
    assert "oversubscribed" in web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert web.get(reverse("search-progress", args=[search.pk])).json()["warnings"] == search.warnings
    with override_settings(FANOUT_REUSE_FITS=False):  # the same fits: they would be copied, not run
        clean = run_inline(create_search(SPEC, owner=owner))
    cores, machine = joblib.cpu_count(), os.cpu_count() or 1  # a pinned worker is told so, and nothing else
    pinned = [f"this worker may use only {cores} of the machine's {machine} cores (CPU affinity or quota)"]
    assert clean.warnings == ([] if cores >= machine else pinned)
    unit = clean.units.get(kind="cv")
    assert unit.threads["inner_threads"] >= 1 and unit.threads["processes"]


def test_study_button_and_table(web: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    response = web.post(reverse("search-study", args=[search.pk]), follow=True)
    assert "wait until this one is done" in response.content.decode() and not ScalingStudy.objects.exists()
    run_inline(search)
    web.post(reverse("search-study", args=[search.pk]))
    study = ScalingStudy.objects.get()
    for run in study.runs.order_by("study_n_jobs"):
        run_inline(run)
    study.refresh_from_db()
    assert study.status == Status.DONE
    page = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert f"Scaling study #{study.pk}" in page and "serial fraction" in page
    figure = web.get(reverse("search-chart", args=[search.pk, "scaling"])).json()
    assert [t["name"] for t in figure["data"]][:2] == ["measured", "ideal (linear)"]
    other = Client()
    other.force_login(User.objects.create_user("other", password="a-long-test-password"))
    assert other.post(reverse("search-study", args=[search.pk])).status_code == 404
    assert Search.objects.filter(study__isnull=False).count() == len(study.n_jobs_list)


def test_timeline_of_a_search_with_copied_fits_shows_the_fits_it_ran(web: Client, owner: User) -> None:
    """Fits copied from an identical earlier search are left off the timeline, with their labels."""
    run_inline(create_search(SPEC, owner=owner))
    copied = run_inline(create_search(SPEC, owner=owner))  # every fit copied: nothing ran here
    assert copied.fits_reused == 9
    response = web.get(reverse("search-chart", args=[copied.pk, "timeline"]))
    assert response.status_code == 200 and response.json()["data"] == []
    grid = {"n_estimators": [10, 30, 50, 70]}
    more = run_inline(create_search({**SPEC, "param_grid": grid}, owner=owner))  # 9 copied, 3 fitted
    assert more.status == Status.DONE and more.fits_reused == 9
    response = web.get(reverse("search-chart", args=[more.pk, "timeline"]))
    assert response.status_code == 200
    (bars,) = response.json()["data"]
    assert sorted(label for label, _, _ in bars["customdata"]) == [f"candidate 3, fold {k}" for k in range(3)]
    for kind in ("utilisation", "busy"):
        assert web.get(reverse("search-chart", args=[more.pk, kind])).status_code == 200

"""Reuse of work through the whole stack: path reuse counted and exported; identical fits of earlier
searches copied (never failed ones, never for a changed fit), idempotently, outside the speedup accounting."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from search.models import Result, ScalingStudy, Search, Status, WorkUnit
from search.selectors.results import search_accounting, search_spans
from search.services.finalize import search_refresh_progress
from search.services.reuse import reuse_enabled
from search.services.units import unit_run
from tests.conftest import create_search, run_inline

pytestmark = pytest.mark.django_db

# LogisticRegression has a random_state (sag, saga, liblinear use it): only pinned is a fit known to repeat
SMALL = {
    "estimator": "LogisticRegression", "params": {"random_state": 0}, "param_grid": {"C": [0.1, 1.0, 10.0]},
    "dataset": "iris", "cv": 3,
}  # fmt: skip
FOREST = {
    "estimator": "RandomForestClassifier", "params": {"random_state": 0},
    "param_grid": {"n_estimators": [5, 10, 20], "max_depth": [None, 3]},
    "dataset": {"name": "make_classification", "options": {"n_samples": 200, "n_features": 6}}, "cv": 3,
}  # fmt: skip


def exported(search: Search) -> dict[str, Any]:
    out = io.StringIO()
    call_command("exportsearch", search.pk, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


def run(spec: dict[str, Any], **kwargs: Any) -> Search:
    search = run_inline(create_search(spec, **kwargs))
    assert search.status == Status.DONE, search.error
    return search


def fits_run(search: Search) -> int:
    return sum(search.units.values_list("fits_run", flat=True))


def test_path_reuse_is_counted_on_the_search_and_in_the_export() -> None:
    search = run(FOREST)
    reused = Result.objects.filter(search=search, path_reused=True)
    # per (max_depth, fold): 5 trees from scratch, 10 and 20 grown from it
    assert reused.count() == 2 * 2 * 3 == search.fits_saved
    assert set(reused.values_list("candidate__params__n_estimators", flat=True)) == {10, 20}
    assert fits_run(search) == 18  # every fit is still scored and stored
    assert exported(search)["search"]["fits_saved"] == 12
    assert not Result.objects.filter(search=search, fit_key="").exists()


def test_path_reuse_can_be_switched_off_with_the_same_scores() -> None:
    grown = run(FOREST)
    with override_settings(FANOUT_PATH_REUSE=False, FANOUT_REUSE_FITS=False):
        alone = run(FOREST)
    assert alone.fits_saved == 0 and not Result.objects.filter(search=alone, path_reused=True).exists()
    assert grown.fits_saved == 12
    assert exported(alone)["cv_results"]["split0_test_score"] == exported(grown)["cv_results"]["split0_test_score"]


def test_a_second_identical_search_reuses_every_fit() -> None:
    first = run(SMALL)
    second = run(SMALL)
    assert fits_run(second) == 0 and second.units.get(kind="cv").fits_run == 0
    rows = Result.objects.filter(search=second).select_related("reused_from")
    assert rows.count() == 9 and second.fits_reused == 9 and second.n_fits_done == 9
    for row in rows:
        original = row.reused_from
        assert original is not None and original.search_id == first.pk
        assert (original.candidate.index, original.fold) == (row.candidate.index, row.fold)
        assert (row.test_scores, row.fit_time, row.host, row.pid) == (
            original.test_scores, original.fit_time, original.host, original.pid,
        )  # fmt: skip
    assert exported(second)["cv_results"] == exported(first)["cv_results"]
    assert exported(second)["search"]["fits_reused"] == 9
    # copies spent no time here: left out of the accounting and the timeline
    assert search_spans(second) == [] and second.busy_time == 0.0 and second.speedup is None
    # a third search points at the fits really computed, not at the copies
    third = run(SMALL)
    assert set(Result.objects.filter(search=third).values_list("reused_from__search", flat=True)) == {first.pk}


def test_copies_stay_copies_when_their_original_search_is_deleted() -> None:
    first = run(SMALL)
    second = run(SMALL)
    first.delete()  # the copies' links become NULL (SET_NULL)
    assert not Result.objects.filter(search=second, reused_from__isnull=False).exists()
    search_refresh_progress(search_id=second.pk)
    second.refresh_from_db()
    assert second.fits_reused == 9 and Result.objects.filter(search=second, reused=True).count() == 9
    # still no time spent here: not counted as computed in the accounting or the timeline
    assert search_spans(second) == [] and search_accounting(second)["busy"] == 0.0


def test_reused_fits_show_on_the_detail_page() -> None:
    owner = User.objects.create_user("owner", password="a-long-test-password")
    run(SMALL, owner=owner)
    second = run(SMALL, owner=owner)
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("search-detail", args=[second.pk])).content.decode()
    assert "9 fits reused from earlier searches" in page
    forest = run(FOREST, owner=owner)
    assert "12 fits saved by path reuse" in client.get(reverse("search-detail", args=[forest.pk])).content.decode()
    board = client.get(reverse("search-leaderboard", args=[second.pk]) + "?sort=index").content.decode()
    assert board.count("3/3 reused") == 3
    board = client.get(reverse("search-leaderboard", args=[forest.pk]) + "?sort=index").content.decode()
    assert board.count("3/3 grown") == 4 and "reused</span>" not in board  # n_estimators 10 and 20, both depths


@pytest.mark.parametrize(
    "change",
    [
        {"param_grid": {"C": [0.2, 2.0, 20.0]}},
        {"params": {"random_state": 0, "max_iter": 50}},
        {"dataset": "wine"},
        {"cv": 4},
        {"cv": {"n_splits": 3, "shuffle": True, "random_state": 0}},
        {"scoring": "accuracy"},
        {"return_train_score": True},
        {
            "estimator": ["StandardScaler", "LogisticRegression"],
            "params": {"logisticregression__random_state": 0},
            "param_grid": {"logisticregression__C": [0.1]},
        },
    ],
)
def test_a_changed_fit_is_not_reused(change: dict[str, Any]) -> None:
    run(SMALL)
    other = run({**SMALL, **change})
    assert other.fits_reused == 0 and fits_run(other) == other.n_fits
    assert not Result.objects.filter(search=other, reused_from__isnull=False).exists()


def test_only_the_identical_candidates_are_reused() -> None:
    run(SMALL)
    other = run({**SMALL, "param_grid": {"C": [1.0, 100.0]}})
    reused = Result.objects.filter(search=other, reused_from__isnull=False)
    assert {json.dumps(p) for p in reused.values_list("candidate__params", flat=True)} == {'{"C": 1.0}'}
    assert reused.count() == 3 == other.fits_reused and fits_run(other) == 3


def test_failed_fits_are_never_reused() -> None:
    spec = {**SMALL, "param_grid": {"solver": ["lbfgs", "liblinear"]}}  # liblinear refuses multiclass iris
    first = run(spec)
    assert first.n_fits_failed == 3
    second = run(spec)
    assert second.fits_reused == 3 and fits_run(second) == 3 and second.n_fits_failed == 3
    assert not Result.objects.filter(search=second).exclude(error="").filter(reused_from__isnull=False).exists()


@override_settings(FANOUT_REUSE_FITS=False)
def test_reuse_can_be_switched_off() -> None:
    run(SMALL)
    second = run(SMALL)
    assert second.fits_reused == 0 and fits_run(second) == 9


def test_scaling_study_runs_always_fit() -> None:
    first = run(SMALL)
    study = ScalingStudy.objects.create(search=first, n_jobs_list=[1], n_candidates=3)
    measured = create_search(SMALL, study=study)
    assert not reuse_enabled(measured.units.get())


def test_a_unit_run_again_after_reuse_stores_each_fit_once() -> None:
    run(SMALL)
    second = run(SMALL)
    unit = second.units.get(kind="cv")
    WorkUnit.objects.filter(pk=unit.pk).update(status=Status.QUEUED)
    Search.objects.filter(pk=second.pk).update(status=Status.RUNNING)
    assert unit_run(unit_id=unit.pk) == "done"
    assert Result.objects.filter(search=second).count() == 9
    assert WorkUnit.objects.get(pk=unit.pk).fits_run == 0


def test_fits_of_an_interrupted_search_are_reused_by_the_next() -> None:
    first = create_search(SMALL)
    unit = first.units.get(kind="cv")
    run_inline(first)
    Result.objects.filter(search=first, candidate__index=2).delete()  # as if the unit died before them
    second = run(SMALL)
    assert second.fits_reused == 6 and fits_run(second) == 3
    assert unit.pk != second.units.get(kind="cv").pk


def test_lookups_in_batches_find_every_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    run(SMALL)
    monkeypatch.setattr("search.services.reuse.LOOKUP_BATCH", 2)
    second = run(SMALL)
    assert second.fits_reused == 9 and fits_run(second) == 0


# ---------------------------------------------------------------------------------------------
# Whose fits, and which fits, may be copied
# ---------------------------------------------------------------------------------------------

TREES = {
    "estimator": "ExtraTreesClassifier", "param_grid": {"n_estimators": [3, 5], "max_depth": [2, None]},
    "dataset": "iris", "cv": 2,
}  # fmt: skip


def test_another_owner_reuses_none_of_the_fits(owner: User, other: User) -> None:
    alice = run(SMALL, owner=owner)
    bob = run(SMALL, owner=other)
    assert bob.fits_reused == 0 and fits_run(bob) == 9
    assert not Result.objects.filter(search=bob, reused=True).exists()
    # CLI searches (no owner) are their own scope: neither Alice's nor Bob's fits, and theirs to nobody else
    cli = run(SMALL)
    assert cli.fits_reused == 0 and fits_run(cli) == 9
    # each scope still reuses its own fits, and only its own
    for first, again in ((alice, run(SMALL, owner=owner)), (bob, run(SMALL, owner=other)), (cli, run(SMALL))):
        assert again.fits_reused == 9 and fits_run(again) == 0
        assert set(Result.objects.filter(search=again).values_list("reused_from__search", flat=True)) == {first.pk}


def test_unseeded_random_estimators_reuse_nothing(owner: User) -> None:
    run(TREES, owner=owner)
    again = run(TREES, owner=owner)
    assert again.fits_reused == 0 and fits_run(again) == 8
    assert not Result.objects.filter(search=again, reused=True).exists()


def test_seeded_random_estimators_reuse_every_fit_with_the_same_path_reuse(owner: User) -> None:
    seeded = {**TREES, "params": {"random_state": 0}}
    first = run(seeded, owner=owner)
    again = run(seeded, owner=owner)
    assert again.fits_reused == 8 and fits_run(again) == 0
    assert exported(again)["cv_results"] == exported(first)["cv_results"]
    with override_settings(FANOUT_PATH_REUSE=False):  # another setting: a grown fit's time is not a fresh one's
        alone = run(seeded, owner=owner)
    assert alone.fits_reused == 0 and fits_run(alone) == 8

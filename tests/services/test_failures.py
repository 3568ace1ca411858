"""Failures during a search: failed fits are data (error text, NULL score) grouped on the page by message
and parameters; a search whose every fit fails ends "failed" with that summary; a unit stopped by
FANOUT_UNIT_TIMEOUT is marked, explained and shown on the detail page, and its runner is gone."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.models import Result, Status
from tests.conftest import create_search, run_inline
from tests.services.test_units import alive

pytestmark = pytest.mark.django_db

EVERY_FIT_FAILS = {
    "name": "all-fail",
    "estimator": "LinearSVC",
    "params": {"penalty": "l1", "dual": True},
    "param_grid": {"loss": ["hinge", "squared_hinge"], "C": [0.1, 1.0]},
    "dataset": "breast_cancer",
    "cv": 3,
}
SLOW = {
    "name": "slow",
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": {"n_estimators": [300, 400, 500, 600]},
    "dataset": {"name": "make_classification", "options": {"n_samples": 4000, "n_features": 40}},
    "cv": 5,
}


def test_a_search_whose_every_fit_fails_ends_failed_with_the_summary(owner: User, web: Client) -> None:
    search = run_inline(create_search(EVERY_FIT_FAILS, owner=owner))
    assert search.status == Status.FAILED and search.best_index is None
    assert search.n_fits_done == search.n_fits_failed == 12
    results = Result.objects.filter(search=search)
    assert results.count() == 12 and not results.filter(error="").exists()
    assert all(v is None for scores in results.values_list("test_scores", flat=True) for v in scores.values())
    assert search.error.startswith("every fit failed: 6× ")
    assert "penalty='l1' and loss='hinge' is not supported" in search.error
    assert "penalty='l1' and loss='squared_hinge' are not supported when dual=True" in search.error
    page = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "every fit failed" in page
    board = web.get(reverse("search-leaderboard", args=[search.pk])).content.decode()
    assert "Fit failures" in board
    # two groups, each one row: its fit count, its message and the parameters that produced it
    rows = board.split('<table class="failures small">')[1].split("<tr>")[2:]
    assert len(rows) == 2 and all('<td class="num">6</td>' in row for row in rows)
    for loss, message in (("hinge", "is not supported,"), ("squared_hinge", "are not supported when dual=True")):
        (row,) = [r for r in rows if f"loss=&#x27;{loss}&#x27; {message}" in r]
        assert row.count(f"&#x27;loss&#x27;: &#x27;{loss}&#x27;") == 2  # C=0.1 and C=1.0


def test_failed_fits_keep_their_error_while_the_others_are_scored(owner: User) -> None:
    spec = {**EVERY_FIT_FAILS, "params": {"dual": True}, "param_grid": {"penalty": ["l1", "l2"], "loss": ["hinge"]}}
    search = run_inline(create_search(spec, owner=owner))
    assert search.status == Status.DONE and search.n_fits_failed == 3
    failed = Result.objects.filter(search=search).exclude(error="")
    assert {r.candidate.params["penalty"] for r in failed} == {"l1"}
    assert all("is not supported" in r.error and r.test_scores["score"] is None for r in failed)
    assert search.best_params == {"loss": "hinge", "penalty": "l2"}


def test_a_unit_over_its_timeout_is_stopped_marked_and_shown(owner: User, web: Client, settings: Any) -> None:
    settings.FANOUT_UNIT_TIMEOUT = 2
    search = run_inline(create_search(SLOW, owner=owner))
    unit = search.units.get()
    assert unit.status == Status.FAILED and unit.timed_out is True
    assert unit.error.startswith("stopped after 2 s (FANOUT_UNIT_TIMEOUT)")
    assert unit.runner_pid is not None and not alive(unit.runner_pid)  # the runner's group was killed
    assert Result.objects.filter(search=search).count() < search.n_fits  # it really was cut short
    assert search.status == Status.FAILED and "stopped after 2 s (FANOUT_UNIT_TIMEOUT)" in search.error
    page = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert 'id="timed-out"' in page and "Timed-out units" in page
    assert "unit 0 (candidates 0–3" in page and "stopped after 2 s (FANOUT_UNIT_TIMEOUT)" in page

"""Estimates before launch: from past fits of the same estimator, weighted by relative cost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from search import services
from search.estimates import estimate_plan
from search.models import Search
from tests.conftest import create_search, run_inline

pytestmark = pytest.mark.django_db
SPEC = {"estimator": "RandomForestClassifier", "params": {"random_state": 0},
        "param_grid": {"n_estimators": [10, 20]}, "dataset": "wine", "cv": 3}  # fmt: skip


def test_no_history_says_so() -> None:
    estimate = estimate_plan(plan=services.plan_search(SPEC))
    assert estimate.fits == 6 and estimate.cpu_seconds is None
    assert "no past fits of RandomForestClassifier" in estimate.line()


def test_same_grid_on_the_same_data_estimates_the_measured_cpu_time() -> None:
    done = run_inline(create_search(SPEC))
    estimate = estimate_plan(plan=services.plan_search(SPEC))
    assert estimate.cpu_seconds == pytest.approx(done.busy_time)
    assert estimate.wall_seconds is not None and estimate.wall_seconds > 0
    assert "from 6 past fits of RandomForestClassifier on this data set" in estimate.basis
    bigger = estimate_plan(plan=services.plan_search({**SPEC, "param_grid": {"n_estimators": [40, 80]}}))
    assert done.busy_time is not None
    assert bigger.cpu_seconds == pytest.approx(done.busy_time * 4)  # 120 trees per fold pair instead of 30


def test_other_data_is_scaled_by_rows() -> None:
    run_inline(create_search(SPEC))  # wine: 178 rows
    other = estimate_plan(plan=services.plan_search({**SPEC, "dataset": "breast_cancer"}))  # 569 rows
    assert "other data sets, scaled to 569 rows" in other.basis and other.cpu_seconds


def test_runsearch_prints_the_estimate(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    out = io.StringIO()
    call_command("runsearch", str(path), "--no-wait", stdout=out)
    assert "  estimate: 6 fits; no past fits of RandomForestClassifier" in out.getvalue()


def test_form_estimate_endpoint() -> None:
    user = User.objects.create_user("u", password="a-long-test-password")
    client = Client()
    client.force_login(user)
    run_inline(create_search(SPEC, owner=user))
    form = {
        "estimator": "RandomForestClassifier", "params": '{"random_state": 0}', "param_grid": '{"n_estimators": [10]}',
        "dataset_kind": "builtin", "builtin": "wine", "cv_splits": "3", "n_jobs": "-1",
    }  # fmt: skip
    data = client.post(reverse("search-estimate"), form).json()
    assert data["ok"] and data["estimate"]["fits"] == 3 and data["estimate"]["cpu_seconds"] > 0
    bad = client.post(reverse("search-estimate"), {**form, "param_grid": '{"n_estimators": [0]}'})
    assert bad.status_code == 400 and "param_grid" in bad.json()["errors"]
    assert Search.objects.count() == 1  # nothing stored

"""Estimates before launch: from past fits of the same estimator weighted by relative cost, or from a pilot."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from search import services
from search.engine import pilot
from search.estimates import estimate_plan
from search.models import Search
from tests.conftest import create_search, run_inline
from tests.test_execution import alive

pytestmark = pytest.mark.django_db
SPEC = {"estimator": "RandomForestClassifier", "params": {"random_state": 0},
        "param_grid": {"n_estimators": [10, 20]}, "dataset": "wine", "cv": 3}  # fmt: skip


@pytest.fixture
def pilots(settings: Any) -> Iterator[None]:
    """Pilots on (the test session turns them off), with an empty pilot cache."""
    from django.core.cache import cache

    settings.FANOUT_PILOT_SECONDS = 5
    cache.clear()
    yield
    cache.clear()


def test_no_history_and_no_pilot_says_so(settings: Any) -> None:
    settings.FANOUT_PILOT_SECONDS = 0
    estimate = estimate_plan(plan=services.plan_search(SPEC))
    assert estimate.fits == 6 and estimate.cpu_seconds is None and estimate.source == "none"
    assert "no past fits of RandomForestClassifier" in estimate.line()


def test_a_pilot_times_real_fits_when_there_is_no_history(pilots: None, monkeypatch: Any) -> None:
    plan = services.plan_search(SPEC)
    estimate = estimate_plan(plan=plan)
    assert estimate.source == "pilot" and not estimate.lower_bound, estimate.basis
    assert estimate.cpu_seconds is not None and estimate.cpu_seconds > 0
    assert estimate.wall_seconds is not None and estimate.wall_seconds > 0
    assert "from a pilot of 2 fits of RandomForestClassifier" in estimate.line()
    ran: list[int] = []  # a second estimate of the same estimator, params and data comes from the cache
    monkeypatch.setattr("search.estimates.pilot_run", lambda **kw: ran.append(1))
    again = estimate_plan(plan=services.plan_search({**SPEC, "param_grid": {"n_estimators": [10, 20, 40]}}))
    assert not ran and again.source == "pilot" and again.fits == 9
    assert again.cpu_seconds == pytest.approx(estimate.cpu_seconds * 70 / 30)  # cost grows with the trees


def test_a_pilot_over_budget_is_stopped_and_reported_as_a_lower_bound(pilots: None, settings: Any) -> None:
    from search.estimates import pilot_run

    settings.FANOUT_PILOT_SECONDS = 3
    slow = {**SPEC, "param_grid": {"n_estimators": [3000]},
            "dataset": {"name": "make_classification", "options": {"n_samples": 4000, "n_features": 40}}}  # fmt: skip
    plan = services.plan_search(slow)
    result = pilot_run(plan=plan, source={"kind": "generator", **plan.spec.dataset.to_dict()}, budget=3)
    assert result.killed and result.lower_bound
    assert result.runner_pid is not None and not alive(result.runner_pid)
    estimate = estimate_plan(plan=plan)
    assert estimate.source == "pilot" and estimate.lower_bound
    assert "pilot stopped after 3 s: at least" in estimate.line() and estimate.line().startswith("3 fits, at least")


def test_with_history_the_history_is_used(pilots: None) -> None:
    run_inline(create_search(SPEC))
    estimate = estimate_plan(plan=services.plan_search(SPEC))
    assert estimate.source == "history" and "past fits" in estimate.basis


def test_extrapolation_is_cost_times_seconds_per_cost() -> None:
    cands = [{"n_estimators": 10}, {"n_estimators": 30}]
    assert [c for c, _, _ in pilot.pilot_cells([*cands, {"n_estimators": 20}])] == [1, 0]
    cpu, wall = pilot.extrapolate(per_cost=0.01, candidates=cands, n_splits=5, processes=2, efficiency=0.5)
    assert cpu == pytest.approx(0.01 * 5 * 40) and wall == pytest.approx(cpu / 2 / 0.5)
    cut = pilot.PilotResult([pilot.PilotFit(30.0, 6.0, False)], killed=True)
    assert cut.lower_bound and cut.per_cost == pytest.approx(0.2) and cut.seconds_per_fit() == 6.0


@override_settings(FANOUT_PATH_REUSE=False)  # every fit from scratch: the estimate does not model path reuse
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


def test_runsearch_and_the_form_show_a_pilot_estimate(pilots: None, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    out = io.StringIO()
    call_command("runsearch", str(path), "--no-wait", stdout=out)
    assert "  estimate: 6 fits, about " in out.getvalue() and "from a pilot of 2 fits" in out.getvalue()
    user = User.objects.create_user("u", password="a-long-test-password")
    client = Client()
    client.force_login(user)
    form = {
        "estimator": "RandomForestClassifier", "params": '{"random_state": 0}', "dataset_kind": "builtin",
        "param_grid": '{"n_estimators": [10, 20]}', "builtin": "wine", "cv_splits": "3", "n_jobs": "-1",
    }  # fmt: skip
    data = client.post(reverse("search-estimate"), form).json()  # the pilot above is cached: no second runner
    assert data["ok"] and data["estimate"]["source"] == "pilot" and data["estimate"]["cpu_seconds"] > 0
    assert "from a pilot of 2 fits" in data["text"]


def test_the_pilot_engine_imports_without_django() -> None:
    import subprocess
    import sys

    from project.cluster import ROOT

    code = "import sys, search.engine.pilot\nassert not [m for m in sys.modules if m.split('.')[0] == 'django']\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

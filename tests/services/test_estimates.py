"""Estimates before launch: from past fits of the same estimator weighted by relative cost, or from a pilot."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django_q.models import OrmQ

from search.engine import halving, pilot
from search.engine.cost import relative_cost
from search.models import Search
from search.services.estimates import _csv_rows, estimate_plan, search_size
from search.services.searches import plan_search, search_cancel
from search.tasks import run_pilot
from tests.conftest import create_search, login_client, run_inline
from tests.services.test_units import alive

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


def _children() -> set[int]:
    """This process's child processes now (every thread's: /proc/<pid>/task/*/children)."""
    pid, found = os.getpid(), set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
            found |= {int(child) for child in f.read().split()}
    return found


@contextlib.contextmanager
def children_started() -> Iterator[set[int]]:
    """The child processes started inside the block: the set before it compared with the children seen
    every 10 ms until it ends, so one that was started and reaped in between (a pilot's runner lives for
    seconds) is counted too."""
    before, started, done = _children(), set[int](), threading.Event()

    def watch() -> None:
        while not done.is_set():
            started.update(_children() - before)
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield started
    finally:
        done.set()
        thread.join()
        started.update(_children() - before)


def test_no_history_and_no_pilot_says_so(settings: Any) -> None:
    settings.FANOUT_PILOT_SECONDS = 0
    estimate = estimate_plan(plan=plan_search(SPEC))
    assert estimate.fits == 6 and estimate.cpu_seconds is None and estimate.source == "none"
    assert "no past fits of RandomForestClassifier" in estimate.line()


def test_a_pilot_times_real_fits_when_there_is_no_history(pilots: None, monkeypatch: Any, owner: User) -> None:
    """The pilot is the cluster's work (the task `run_pilot`, run here inline): its estimate is stored on the
    search, shown on its page, and answers later estimates of the same estimator, parameters and data."""
    search = create_search(SPEC, owner=owner)
    page = login_client(owner).get(reverse("search-detail", args=[search.pk])).content.decode()
    assert search.pilot is None and "Estimate from a pilot" not in page
    assert run_pilot(search.pk) == "stored"
    search.refresh_from_db()
    assert search.pilot is not None and search.pilot["state"] == "done" and not search.pilot["lower_bound"]
    assert search.pilot["per_cost"] > 0 and search.pilot["fits"] == 2 and search.pilot["cpu_seconds"] > 0
    assert "from a pilot of 2 fits of RandomForestClassifier" in search.pilot["text"]
    page = login_client(owner).get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "Estimate from a pilot on the cluster" in page and search.pilot["text"] in page
    assert run_pilot(search.pk) == "skipped"  # a duplicate delivery times nothing again
    with children_started() as started:
        estimate = estimate_plan(plan=plan_search(SPEC), owner=owner)
    assert not started and estimate.source == "pilot" and not estimate.lower_bound, estimate.basis
    assert estimate.cpu_seconds == pytest.approx(search.pilot["cpu_seconds"])
    assert estimate.wall_seconds is not None and estimate.wall_seconds > 0
    assert "from a pilot of 2 fits of RandomForestClassifier" in estimate.line()
    ran: list[int] = []  # a second estimate of the same estimator, params and data comes from the cache
    monkeypatch.setattr("search.services.estimates.pilot_run", lambda **kw: ran.append(1))
    again = estimate_plan(plan=plan_search({**SPEC, "param_grid": {"n_estimators": [10, 20, 40]}}), owner=owner)
    assert not ran and again.source == "pilot" and again.fits == 9
    # cost grows with the trees; with path reuse each fold grows one forest: 40 trees instead of 20
    assert estimate.cpu_seconds is not None
    assert again.cpu_seconds == pytest.approx(estimate.cpu_seconds * 40 / 20)
    assert "6 of them grown from a smaller model (path reuse)" in again.basis


SLOW = {**SPEC, "param_grid": {"n_estimators": [3000]},
        "dataset": {"name": "make_classification", "options": {"n_samples": 4000, "n_features": 40}}}  # fmt: skip


def test_a_pilot_over_budget_is_stopped_and_reported_as_a_lower_bound(pilots: None, settings: Any) -> None:
    from search.services.estimates import pilot_run

    settings.FANOUT_PILOT_SECONDS = 3
    plan = plan_search(SLOW)
    result = pilot_run(plan=plan, source={"kind": "generator", **plan.spec.dataset.to_dict()}, budget=3)
    assert result.killed and result.lower_bound
    assert result.runner_pid is not None and not alive(result.runner_pid)
    search = create_search(SLOW)
    assert run_pilot(search.pk) == "stored"
    search.refresh_from_db()
    assert search.pilot is not None and search.pilot["lower_bound"]
    assert "pilot stopped after 3 s: at least" in search.pilot["text"]
    estimate = estimate_plan(plan=plan)
    assert estimate.source == "pilot" and estimate.lower_bound
    assert "pilot stopped after 3 s: at least" in estimate.line() and estimate.line().startswith("3 fits, at least")


def test_with_history_the_history_is_used(pilots: None) -> None:
    run_inline(create_search(SPEC))
    estimate = estimate_plan(plan=plan_search(SPEC))
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
    estimate = estimate_plan(plan=plan_search(SPEC))
    assert estimate.cpu_seconds == pytest.approx(done.busy_time)
    assert estimate.wall_seconds is not None and estimate.wall_seconds > 0
    assert "from 6 past fits of RandomForestClassifier on this data set" in estimate.basis
    bigger = estimate_plan(plan=plan_search({**SPEC, "param_grid": {"n_estimators": [40, 80]}}))
    assert done.busy_time is not None
    assert bigger.cpu_seconds == pytest.approx(done.busy_time * 4)  # 120 trees per fold pair instead of 30


def test_other_data_is_scaled_by_rows() -> None:
    run_inline(create_search(SPEC))  # wine: 178 rows
    other = estimate_plan(plan=plan_search({**SPEC, "dataset": "breast_cancer"}))  # 569 rows
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


def test_runsearch_starts_at_once_and_queues_the_pilot_after_the_units(
    pilots: None, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """runsearch estimates from past fits only: with none it says so and starts no process; the pilot goes to
    the cluster behind the search's own units. Once it has run, the form's estimate comes from it."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    out = io.StringIO()
    with children_started() as started, django_capture_on_commit_callbacks(execute=True):
        call_command("runsearch", str(path), "--no-wait", stdout=out)
    assert not started
    assert "  estimate: 6 fits; no estimate yet: no past fits of RandomForestClassifier" in out.getvalue()
    search = Search.objects.get()
    queued = [m.name() for m in OrmQ.objects.order_by("pk")]
    assert queued == [f"search-{search.pk}-unit-0", f"search-{search.pk}-pilot"]
    assert run_pilot(search.pk) == "stored"  # the cluster's worker runs it (here inline)
    user = User.objects.create_user("u", password="a-long-test-password")
    client = Client()
    client.force_login(user)
    form = {
        "estimator": "RandomForestClassifier", "params": '{"random_state": 0}', "dataset_kind": "builtin",
        "param_grid": '{"n_estimators": [10, 20]}', "builtin": "wine", "cv_splits": "3", "n_jobs": "-1",
    }  # fmt: skip
    with children_started() as started:
        data = client.post(reverse("search-estimate"), form).json()  # the pilot above is cached: no runner
    assert not started
    assert data["ok"] and data["estimate"]["source"] == "pilot" and data["estimate"]["cpu_seconds"] > 0
    assert "from a pilot of 2 fits" in data["text"]


MLP_FORM = {
    "estimator": "MLPClassifier", "params": '{"hidden_layer_sizes": [500, 500], "max_iter": 200}',
    "param_grid": '{"alpha": [0.0001, 0.001, 0.01]}', "dataset_kind": "builtin", "builtin": "digits",
    "cv_splits": "3", "n_jobs": "-1",
}  # fmt: skip


def test_the_estimate_endpoint_never_fits_on_the_web_server(pilots: None, web: Client) -> None:
    """A large MLP with no past fits: the form's estimate starts no process here and says there is none yet
    (it used to run a pilot runner on the web host and wait for it)."""
    with children_started() as started:
        response = web.post(reverse("search-estimate"), MLP_FORM)
    assert response.status_code == 200, response.content
    assert not started, f"the estimate started processes {started}"
    data = response.json()
    assert data["ok"] and data["estimate"]["fits"] == 9 and data["estimate"]["cpu_seconds"] is None
    assert data["text"].startswith("9 fits; no estimate yet: no past fits of MLPClassifier")
    assert "a pilot runs on the cluster when the search starts" in data["text"]
    assert Search.objects.count() == 0


def test_a_cancelled_searchs_pilot_does_nothing(pilots: None) -> None:
    search = create_search(SPEC)
    assert search_cancel(search=search)
    with children_started() as started:
        assert run_pilot(search.pk) == "skipped"
    assert not started
    search.refresh_from_db()
    assert search.pilot is None
    assert estimate_plan(plan=plan_search(SPEC)).source == "none"  # nothing cached either


@pytest.mark.django_db(transaction=True)  # the pilot runs in a thread, with its own connection
def test_cancelling_a_search_stops_its_running_pilot(pilots: None, settings: Any) -> None:
    settings.FANOUT_PILOT_SECONDS = 120  # far longer than the test waits: only the cancel can end it
    search = create_search(SLOW)
    outcome: list[str] = []

    def work() -> None:
        try:
            outcome.append(run_pilot(search.pk))
        finally:
            connection.close()

    with children_started() as started:
        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 30
        while not started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started, "the pilot's runner never started"
        time.sleep(1.0)  # the runner is fitting (or still importing scikit-learn)
        assert search_cancel(search=search)
        thread.join(timeout=30)
    assert not thread.is_alive() and outcome == ["cancelled"]
    assert not [pid for pid in started if alive(pid)]  # the runner's group is gone
    search.refresh_from_db()
    assert search.pilot is None


def test_the_pilot_engine_imports_without_django() -> None:
    import subprocess
    import sys

    from project.cluster import ROOT

    code = "import sys, search.engine.pilot\nassert not [m for m in sys.modules if m.split('.')[0] == 'django']\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_path_reuse_costs_a_chain_its_largest_fit() -> None:
    forest = [("RandomForestClassifier", "sklearn.ensemble")]
    cands = [{"criterion": c, "n_estimators": n} for c in ("gini", "entropy") for n in (10, 20, 40)]
    common: dict[str, Any] = {
        "steps": forest, "params": {"random_state": 0}, "candidates": cands, "n_splits": 3, "n_samples": 178,
    }  # fmt: skip
    grown = pilot.search_cost(**common, path_reuse=True)
    alone = pilot.search_cost(**common, path_reuse=False)
    assert grown.fits == alone.fits == 18 and grown.path_reused == 2 * 2 * 3 and alone.path_reused == 0
    assert grown.cost == pytest.approx(2 * 40) and alone.cost == pytest.approx(2 * (10 + 20 + 40))
    unchained = pilot.search_cost(**{**common, "params": {}}, path_reuse=True)  # no fixed random_state
    assert unchained.path_reused == 0 and unchained.cost == alone.cost


def test_a_halving_estimate_counts_every_round_at_its_budget(settings: Any) -> None:
    settings.FANOUT_PILOT_SECONDS = 0
    spec = {"estimator": "RandomForestClassifier", "params": {"random_state": 0}, "dataset": "wine", "cv": 3,
            "param_grid": {"criterion": ["gini", "entropy", "log_loss"], "max_features": ["sqrt", "log2", None]},
            "strategy": "halving",
            "halving": {"resource": "n_estimators", "min_resources": 5, "max_resources": 45}}  # fmt: skip
    plan = plan_search(spec)
    search = create_search(spec)
    estimate = estimate_plan(plan=plan)
    assert search.schedule["n_candidates"] == [9, 3, 1] and search.schedule["n_resources"] == [5, 15, 45]
    assert estimate.fits == search.n_fits == (9 + 3 + 1) * 3
    size = pilot.search_cost(
        steps=plan.steps, params={"random_state": 0}, candidates=plan.candidates, n_splits=3, n_samples=178,
        path_reuse=True, hs=plan.spec.halving, schedule=halving.Schedule.from_dict(search.schedule),
        budget_default=100,  # RandomForestClassifier's n_estimators: what the pilot and history time
    )  # fmt: skip
    assert size.cost == pytest.approx((9 * 5 + 3 * 15 + 1 * 45) / 100)  # forests cost their trees


def test_a_halving_estimate_over_rows_scales_each_round_by_its_rows() -> None:
    spec = {"estimator": "LogisticRegression", "dataset": "breast_cancer", "cv": 3, "strategy": "halving",
            "param_grid": {"C": [0.01, 0.1, 1, 10, 100, 1000]}, "halving": {"factor": 2}}  # fmt: skip
    plan = plan_search(spec)
    search = create_search(spec)
    size = search_size(plan, n_samples=569, n_classes=2)
    rounds = search.schedule
    assert size.fits == search.n_fits == sum(rounds["n_candidates"]) * 3
    per_candidate = sum(relative_cost(c) for c in plan.candidates) / len(plan.candidates)  # C counts
    rows = sum(n * r / 569 for n, r in zip(rounds["n_candidates"], rounds["n_resources"], strict=True))
    assert size.cost == pytest.approx(per_candidate * rows)


def test_csv_rows_are_counted_without_parsing(tmp_path: Path) -> None:
    for text, rows in [("a,b\n1,2\n3,4\n", 2), ("a,b\n1,2\n3,4", 2), ("a,b\n", 0), ("", 0)]:
        path = tmp_path / "data.csv"
        path.write_text(text)
        assert _csv_rows(str(path)) == rows, text
    assert _csv_rows(str(tmp_path / "missing.csv")) == 0
    assert _csv_rows("/dev/zero") == 0  # not a regular file: never read (it would never end)


def test_the_live_check_reports_what_would_only_fail_on_submit() -> None:
    """Data-dependent errors reach the form while it is filled in, next to their field; nothing is stored."""
    user = User.objects.create_user("u", password="a-long-test-password")
    client = Client()
    client.force_login(user)
    form = {
        "estimator": "LogisticRegression", "param_grid": '{"C": [1]}', "dataset_kind": "builtin", "builtin": "iris",
        "cv_splits": "3", "n_jobs": "-1",
    }  # fmt: skip
    assert client.post(reverse("search-estimate"), form).status_code == 200
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"cv_splits": "60"}, "cv_splits", "smallest class has 50"),
        ({"scoring": ["f1"]}, "scoring", "f1_macro"),
        ({"strategy": "halving", "halving_min_resources": "400"}, "halving_min_resources", "greater than max"),
        ({"dataset_kind": "generator", "generator": "make_regression", "generator_options": '{"n_samples": 50}'},
         "generator", "target is continuous"),
    ]  # fmt: skip
    for changes, field, words in cases:
        response = client.post(reverse("search-estimate"), {**form, **changes})
        assert response.status_code == 400, (changes, response.content)
        errors = response.json()["errors"]
        assert field in errors and words in errors[field][0]["message"], (changes, errors)
    assert Search.objects.count() == 0


def test_an_estimate_request_samples_and_schedules_once(monkeypatch: Any) -> None:
    """The form's live estimate of a halving search over 'exhaust' sampled candidates: the data-dependent
    draw and the halving schedule are computed once (in the engine's plan_for_data), not again for the estimate."""
    from search.engine import validate

    calls = {"draw": 0, "schedule": 0}
    draw, schedule = validate.sampled_for_data, halving.schedule

    def counted_draw(*args: Any, **kwargs: Any) -> Any:
        calls["draw"] += 1
        return draw(*args, **kwargs)

    def counted_schedule(*args: Any, **kwargs: Any) -> Any:
        calls["schedule"] += 1
        return schedule(*args, **kwargs)

    monkeypatch.setattr(validate, "sampled_for_data", counted_draw)
    monkeypatch.setattr(halving, "schedule", counted_schedule)
    user = User.objects.create_user("u", password="a-long-test-password")
    client = Client()
    client.force_login(user)
    form = {
        "estimator": "LogisticRegression", "dataset_kind": "builtin", "builtin": "iris", "cv_splits": "3",
        "n_jobs": "-1", "strategy": "halving_random", "halving_factor": "3", "halving_resource": "n_samples",
        "param_distributions": '{"C": {"distribution": "loguniform", "args": [0.01, 100]}}',
    }  # fmt: skip
    response = client.post(reverse("search-estimate"), form)
    assert response.status_code == 200, response.content
    assert calls == {"draw": 1, "schedule": 1}
    # 150 rows // (3 folds × 2 rows × 3 classes) = 8 candidates on 18 rows, then 3 on 54
    assert response.json()["estimate"]["fits"] == (8 + 3) * 3


@pytest.mark.django_db
def test_candidates_that_cannot_be_drawn_for_the_estimate_leave_a_note_not_an_error() -> None:
    # A normal distribution for C draws a negative value among the 'exhaust' candidates (400 rows), though
    # the 10 provisional draws at validation were all positive: before, the estimate raised (a 500).
    spec = {
        "estimator": "LogisticRegression",
        "strategy": "halving",
        "random_state": 0,
        "param_distributions": {"C": {"distribution": "norm", "args": [1.0, 0.45]}},
        "halving": {"factor": 3, "min_resources": 10},
        "dataset": {"name": "make_classification", "options": {"n_samples": 400, "random_state": 0}},
        "cv": 3,
    }
    estimate = estimate_plan(plan=plan_search(spec))
    assert "could not be drawn for this estimate" in estimate.basis and "param_distributions.C" in estimate.basis


def test_a_pilot_never_runs_once_its_searchs_units_have_started(pilots: None, monkeypatch: Any) -> None:
    """A worker has claimed the search's unit: the pilot would only take its cores (or, on one worker, wait
    between the last fit and the refit), so it is skipped without starting anything."""
    from search.services.units import unit_claim

    search = create_search(SPEC)
    assert unit_claim(unit_id=search.units.get().pk) is not None
    ran: list[int] = []
    monkeypatch.setattr("search.services.estimates.pilot_run", lambda **kw: ran.append(1))
    with children_started() as started:
        assert run_pilot(search.pk) == "skipped: the search has started"
    assert not ran and not started


def test_a_running_pilot_stops_when_its_searchs_first_unit_is_claimed(pilots: None, monkeypatch: Any) -> None:
    from search.services.units import unit_claim

    search = create_search(SPEC)

    def pilot_run(*, plan: Any, source: Any, budget: float, stop: Any) -> pilot.PilotResult:
        assert not stop()  # every unit still queued: the pilot may time its fits
        assert unit_claim(unit_id=search.units.get().pk) is not None  # a worker takes the search's unit
        assert stop()  # `pilot.watch` asks every 0.5 s and kills the pilot's runner
        return pilot.PilotResult(stopped=True)

    monkeypatch.setattr("search.services.estimates.pilot_run", pilot_run)
    assert run_pilot(search.pk) == "stopped: the search has started"
    search.refresh_from_db()
    assert search.pilot is None

"""Random search and successive halving as a person sets them up: the form's strategy switch, then a
halving search run by a real qcluster with its rounds drawn on the detail page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from search.models import Search, Status
from tests.browser.test_ui import SEARCH_TIMEOUT_MS, fill_grid

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_random_search_form_shows_distributions_and_samples_n_iter(
    logged_in: Page, base_url: str, user: User, screenshot: Any
) -> None:
    page = logged_in
    page.goto(f"{base_url}/searches/new/")
    expect(page.locator("#id_param_distributions")).to_be_hidden()  # grid search is the default
    page.get_by_label("Random: sampled candidates").check()
    expect(page.locator("#id_param_distributions")).to_be_visible()
    expect(page.locator("#grid-editor")).to_be_hidden()
    expect(page.locator("#id_halving_factor")).to_be_hidden()
    page.select_option("#id_estimator", "SVC")
    page.fill(
        "#id_param_distributions",
        '{"C": {"distribution": "loguniform", "args": [0.01, 100]}, "kernel": ["rbf", "linear"]}',
    )
    page.fill("#id_n_iter", "7")
    expect(page.locator("#count-candidates")).to_have_text("7")
    expect(page.locator("#count-prefix")).to_have_text("at most ")
    screenshot(page, "search-new-random")
    with page.expect_navigation():
        page.get_by_role("button", name="Start search").click()
    search = Search.objects.get(owner=user)
    assert search.strategy == "random" and search.n_candidates == 7
    expect(page.locator(".messages")).to_contain_text(f"Search {search.pk} queued: 35 fits.")


def test_halving_over_sampled_candidates_shows_both_sets_of_fields(
    logged_in: Page, base_url: str, user: User, screenshot: Any
) -> None:
    page = logged_in
    page.goto(f"{base_url}/searches/new/")
    page.get_by_label("Successive halving over sampled candidates").check()
    for shown in ("#id_param_distributions", "#id_halving_n_candidates", "#id_halving_factor", "#id_random_state"):
        expect(page.locator(shown)).to_be_visible()
    for hidden in ("#grid-editor", "#id_n_iter"):
        expect(page.locator(hidden)).to_be_hidden()
    page.select_option("#id_estimator", "SVC")
    page.fill("#id_cv_splits", "3")
    page.fill("#id_param_distributions", '{"C": {"distribution": "loguniform", "args": [0.01, 100]}}')
    expect(page.locator("#count-candidates")).to_have_text("?")  # "exhaust": known from the data set's size
    expect(page.locator("#estimate")).to_contain_text("Estimate: 33 fits")  # iris: 8 + 3 candidates × 3 folds
    page.fill("#id_halving_n_candidates", "9")
    expect(page.locator("#count-candidates")).to_have_text("9")
    expect(page.locator("#count-prefix")).to_have_text("first round: ")
    page.fill("#id_cv_splits", "60")  # more folds than iris has rows of a class: said before submitting
    expect(page.locator("#estimate")).to_contain_text("Not ready: Folds: 60 stratified folds need at least 60 rows")
    page.fill("#id_cv_splits", "3")
    screenshot(page, "search-new-halving-random")
    with page.expect_navigation():
        page.get_by_role("button", name="Start search").click()
    search = Search.objects.get(owner=user)
    assert search.strategy == "halving" and search.spec["halving"]["n_candidates"] == 9
    assert search.schedule["n_candidates"] == [9, 3]  # 150 rows // 18 (smallest) allow 2 rounds


def test_bad_distribution_is_shown_next_to_its_field(logged_in: Page, base_url: str) -> None:
    page = logged_in
    page.goto(f"{base_url}/searches/new/")
    page.get_by_label("Random: sampled candidates").check()
    page.fill("#id_param_distributions", '{"C": {"distribution": "lognormal", "args": [1]}}')
    page.get_by_role("button", name="Start search").click()
    error = page.locator("#id_param_distributions").locator("xpath=ancestor::*[contains(@class, 'field')][1]")
    expect(error).to_contain_text("'lognormal' is not a scipy.stats distribution. Did you mean lognorm")
    expect(page.locator("#id_param_distributions")).to_be_visible()  # the random fields stay chosen
    assert Search.objects.count() == 0


def test_halving_search_runs_round_by_round_and_shows_its_rounds(
    logged_in: Page, base_url: str, user: User, request: pytest.FixtureRequest, screenshot: Any
) -> None:
    page = logged_in
    page.goto(f"{base_url}/searches/new/")
    page.get_by_label("Successive halving: many candidates").check()
    expect(page.locator("#id_halving_factor")).to_be_visible()
    expect(page.locator("#grid-editor")).to_be_visible()
    expect(page.locator("#id_param_distributions")).to_be_hidden()
    page.select_option("#id_estimator", "LogisticRegression")
    expect(page.locator("#task-label")).to_have_text("(LogisticRegression, classification)")
    fill_grid(page, {"C": "0.001, 0.01, 0.1, 1, 10, 100"})
    page.fill("#id_halving_factor", "2")
    page.select_option("#id_builtin", "breast_cancer")
    page.fill("#id_cv_splits", "3")
    expect(page.locator("#count-prefix")).to_have_text("first round: ")
    with page.expect_navigation():
        page.get_by_role("button", name="Start search").click()
    search = Search.objects.get(owner=user)
    assert search.strategy == "halving" and search.schedule["n_candidates"] == [6, 3, 2]

    request.getfixturevalue("qcluster")
    page.wait_for_function(
        """() => document.getElementById("status-badge").textContent === "done" """, timeout=SEARCH_TIMEOUT_MS
    )
    page.reload()  # the rounds table is drawn by the server
    rows = page.locator("#rounds tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2).locator("td").first).to_have_text("2")
    expect(rows.nth(2).locator("td").nth(1)).to_have_text(str(search.schedule["n_resources"][2]))
    page.wait_for_function(
        """() => { const d = document.getElementById("chart-rounds-plot");
                   return d.classList.contains("js-plotly-plot") && d.dataset.drawn === "1"; }"""
    )
    screenshot(page, "search-detail-halving")
    search.refresh_from_db()
    assert search.status == Status.DONE and search.n_fits_done == search.n_fits == 11 * 3

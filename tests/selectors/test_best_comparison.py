"""The detail page's "Is the best really best?" table, checked against GridSearchCV and the example's formula."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from scipy import stats
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

from search.models import Search
from search.selectors.searches import best_comparison
from tests.conftest import create_search, run_inline

pytestmark = pytest.mark.django_db
GRID = {"C": [0.1, 1, 10], "kernel": ["linear", "rbf", "sigmoid"]}
SPEC = {"name": "svc-stats", "estimator": "SVC", "dataset": "iris", "cv": 5, "param_grid": GRID}


def expected_rows(top: int) -> list[tuple[int, float, float]]:
    """(candidate index, t, two-sided p) per challenger, from GridSearchCV and the example's formula."""
    X, y = load_iris(return_X_y=True)
    cv = StratifiedKFold(5)
    res = GridSearchCV(SVC(), GRID, cv=cv, refit=False).fit(X, y).cv_results_
    folds = np.array([res[f"split{j}_test_score"] for j in range(5)]).T
    order = sorted(range(len(folds)), key=lambda i: (res["rank_test_score"][i], i))
    train, test = next(cv.split(X, y))
    out = []
    for i in order[1:top]:
        d = folds[order[0]] - folds[i]
        if np.ptp(d) < 1e-12:  # the page's zero-variance rule
            out.append((i, 0.0 if abs(d.mean()) < 1e-12 else np.inf, 1.0 if abs(d.mean()) < 1e-12 else 0.0))
            continue
        t = d.mean() / np.sqrt(np.var(d, ddof=1) * (1 / len(d) + len(test) / len(train)))
        out.append((i, float(t), float(2 * stats.t.sf(abs(t), len(d) - 1))))
    return out


def test_detail_page_shows_the_corrected_tests(web: Client, owner: User) -> None:
    search = run_inline(create_search(SPEC, owner=owner))
    html = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "Is the best really best?" in html and "plot_grid_search_stats.html" in html
    assert "n<sub>test</sub>/n<sub>train</sub> = 30/120" in html
    comparison = best_comparison(search)
    assert comparison is not None and (comparison.n_train, comparison.n_test, comparison.k) == (120, 30, 5)
    expected = expected_rows(10)
    assert [r.index for r in comparison.rows] == [i for i, _, _ in expected]
    for row, (index, t, p) in zip(comparison.rows, expected, strict=True):
        assert row.test.t == pytest.approx(t, abs=1e-12) and row.test.p == pytest.approx(p, abs=1e-12), index
        cell = html.split(f'<tr data-index="{index}">', 1)[1].split("</tr>", 1)[0]
        assert f'<td class="num p-value">{p:.3g}</td>' in cell
        assert ("within noise" if p >= 0.05 else "worse") in cell
    assert {r.test.verdict for r in comparison.rows} == {"within noise", "worse"}  # both kinds occur here
    top3 = best_comparison(search, top=3)
    assert top3 is not None and [r.index for r in top3.rows] == [i for i, _, _ in expected_rows(3)]


def test_no_table_before_the_search_is_done(web: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    assert best_comparison(search) is None
    assert "Is the best really best?" not in web.get(reverse("search-detail", args=[search.pk])).content.decode()


def test_a_candidate_with_failed_fits_gets_no_test(web: Client, owner: User) -> None:
    spec: dict[str, Any] = {
        "estimator": "LogisticRegression", "dataset": "iris", "cv": 3, "params": {"solver": "lbfgs", "max_iter": 500},
        "param_grid": {"penalty": ["l2", "l1"], "C": [0.1, 1.0]},
    }  # fmt: skip
    search: Search = run_inline(create_search(spec, owner=owner))
    comparison = best_comparison(search)
    assert comparison is not None
    failed = [r for r in comparison.rows if r.params["penalty"] == "l1"]
    assert len(failed) == 2 and all(r.test.verdict == "no test" and r.test.p is None for r in failed)
    assert failed[0].test.reason == "failed fit on fold 0, 1, 2"
    html = web.get(reverse("search-detail", args=[search.pk])).content.decode()
    assert "failed fit on fold 0, 1, 2" in html

"""The model as a person gets it: downloaded from the detail page, then used on the predict page, whose
prediction a real qcluster makes. A real Chromium against `live_server`."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from playwright.sync_api import FilePayload, Page, expect
from sklearn import datasets as skd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from search.engine import artifacts
from search.models import Prediction, Status
from tests.conftest import create_search, run_inline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GRID = {"logisticregression__C": [0.1, 1.0, 10.0]}
SPEC = {
    "name": "iris model", "estimator": ["StandardScaler", "LogisticRegression"], "param_grid": GRID,
    "dataset": "iris", "cv": 3, "holdout": {"test_size": 0.2, "random_state": 1, "stratify": True},
}  # fmt: skip
PREDICT_TIMEOUT_MS = 60_000


def held_out() -> tuple[list[str], np.ndarray, np.ndarray, Any]:
    iris = skd.load_iris()
    X_train, X_test, y_train, _ = train_test_split(
        iris.data, iris.target, test_size=0.2, random_state=1, stratify=iris.target
    )
    best = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), GRID, cv=3).fit(X_train, y_train)
    return list(iris.feature_names), X_train, X_test, best.best_estimator_


def csv_bytes(names: list[str], X: np.ndarray) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["target", *reversed(names)])  # another order, and an extra column: matched by name
    for row in X:
        writer.writerow(["?", *(repr(float(v)) for v in reversed(row))])
    return buf.getvalue().encode()


def test_download_the_model_then_predict_a_csv_file_on_the_cluster(
    logged_in: Page, base_url: str, user: User, request: pytest.FixtureRequest, screenshot: Any
) -> None:
    page = logged_in
    search = run_inline(create_search(SPEC, owner=user))
    assert search.status == Status.DONE
    names, _, X_test, reference = held_out()

    page.goto(f"{base_url}/searches/{search.pk}/")
    expect(page.locator("#model")).to_be_visible()
    expect(page.locator("#model-summary")).to_contain_text("refitted on 120 training rows")
    expect(page.locator("#holdout-split")).to_contain_text("30 of 150 rows")
    assert search.holdout is not None
    expect(page.locator("#model-scores .holdout-score")).to_have_text([f"{search.holdout['scores']['score']:.4f}"])
    expect(page.locator("#download-joblib")).to_be_hidden()  # behind its warning
    page.click("#joblib-download summary")
    expect(page.locator("#joblib-download .error")).to_contain_text("loading it runs whatever code it holds")
    expect(page.locator("#download-joblib")).to_be_visible()
    screenshot(page, "search-detail-model")

    with page.expect_download() as info:
        page.click("#download-skops")
    download = info.value
    assert download.suggested_filename == f"search-{search.pk}-model.skops"
    model = artifacts.load(Path(download.path()))
    assert np.array_equal(model.predict(X_test), reference.predict(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), reference.predict_proba(X_test), rtol=0, atol=1e-12)

    with page.expect_navigation():
        page.click("#predict-link")
    assert page.url == f"{base_url}/searches/{search.pk}/predict/"
    for name in names:
        expect(page.locator("#predict-features")).to_contain_text(name)

    # A file without one of the feature columns: refused at once, the column named.
    missing = csv_bytes(names[:3], X_test[:, :3])
    page.set_input_files("#predict-file", FilePayload(name="three.csv", mimeType="text/csv", buffer=missing))
    with page.expect_navigation():
        page.get_by_role("button", name="Predict").click()
    expect(page.locator("#predict-error")).to_contain_text(names[3])
    assert not Prediction.objects.exists()

    page.set_input_files(
        "#predict-file", FilePayload(name="new-rows.csv", mimeType="text/csv", buffer=csv_bytes(names, X_test))
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Predict").click()
    expect(page.locator(".messages")).to_contain_text("is queued on the cluster")
    request.getfixturevalue("qcluster")  # a real `manage.py qcluster` makes the prediction
    link = page.locator("#predictions .prediction-download")
    expect(link).to_have_count(1, timeout=PREDICT_TIMEOUT_MS)  # the page refreshes itself until it is done
    expect(page.locator("#predictions .badge")).to_have_text(["done"])
    screenshot(page, "search-predict-done")
    with page.expect_download() as info:
        link.click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == ["prediction", "proba_0", "proba_1", "proba_2"] and len(rows) == len(X_test) + 1
    assert np.array_equal(np.array([int(r[0]) for r in rows[1:]]), reference.predict(X_test))
    proba = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert np.array_equal(proba, model.predict_proba(X_test))  # full precision, the downloaded model's own
    np.testing.assert_allclose(proba, reference.predict_proba(X_test), rtol=0, atol=1e-12)
    prediction = Prediction.objects.get()
    assert prediction.status == Status.DONE and prediction.n_rows == len(X_test) and prediction.host

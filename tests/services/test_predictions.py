"""Predictions with a real search's model: created from an upload, run as the cluster's worker runs them (called
directly here), reconciled, and removed with their search. Checked against the stored model and, independently,
against GridSearchCV's own best estimator."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from search.engine import artifacts
from search.engine.predict import PredictError
from search.models import Dataset, Prediction, Search, Status, model_storage
from search.services.predictions import (
    PredictionRefused,
    prediction_claim,
    prediction_create,
    prediction_run,
    predictions_reconcile,
)
from tests.conftest import create_search, queued_messages, run_inline

pytestmark = pytest.mark.django_db

GRID = {"logisticregression__C": [0.1, 1.0]}
SPEC = {"estimator": ["StandardScaler", "LogisticRegression"], "param_grid": GRID, "dataset": "iris", "cv": 3}
IRIS = load_iris()
FEATURES = list(IRIS.feature_names)


@contextmanager
def committed_model_search(django_db_blocker: Any, owner_name: str | None = None) -> Iterator[Search]:
    """One search run to its model, committed for a whole test module (each test's own writes are rolled back);
    removed afterwards with its files, its data set, its owner and the broker messages it left."""
    from django_q.brokers import get_broker

    with django_db_blocker.unblock():
        owner = User.objects.create_user(owner_name, password="a-long-test-password") if owner_name else None
        search = run_inline(create_search(SPEC, owner=owner))
        assert search.status == Status.DONE and search.model
        get_broker().purge_queue()  # the refit unit's message, sent on commit here
    try:
        yield search
    finally:
        with django_db_blocker.unblock():
            dataset_id = search.dataset_id
            Search.objects.filter(pk=search.pk).delete()
            if not Search.objects.filter(dataset_id=dataset_id).exists():
                Dataset.objects.filter(pk=dataset_id).delete()
            if owner is not None:
                owner.delete()
            get_broker().purge_queue()


def iris_csv(X: np.ndarray = IRIS.data, y: np.ndarray = IRIS.target) -> bytes:
    """The rows as CSV with the columns shuffled and the target among them (matched by name, extra ignored)."""
    columns = ["target", *FEATURES]
    order = np.random.default_rng(0).permutation(len(columns))
    table = np.column_stack([y, X])[:, order]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([columns[i] for i in order])
    writer.writerows([repr(float(v)) for v in row] for row in table)
    return out.getvalue().encode()


def read_predictions(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(header, prediction column as ints, proba columns as floats) of an output CSV."""
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, np.array([int(r[0]) for r in rows]), np.array([[float(c) for c in r[1:]] for r in rows])


def stored_model(search: Search) -> BaseEstimator:
    with search.model.skops_file.open("rb") as fh:
        return artifacts.load(fh.read())


def oracle() -> BaseEstimator:
    """What scikit-learn itself refits for the same search."""
    grid = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), GRID, cv=3)
    return grid.fit(IRIS.data, IRIS.target).best_estimator_


def upload(content: bytes, name: str = "iris.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def storage_files(prefix: str) -> set[str]:
    """Every file name in the model storage under `prefix`."""
    storage = model_storage()
    if not storage.exists(prefix):
        return set()
    dirs, files = storage.listdir(prefix)
    return {f"{prefix}/{f}" for f in files} | {n for d in dirs for n in storage_files(f"{prefix}/{d}")}


@pytest.fixture(scope="module")
def search(django_db_setup: None, django_db_blocker: Any) -> Iterator[Search]:
    with committed_model_search(django_db_blocker) as found:
        yield found


def test_a_prediction_is_the_models_own_and_scikit_learns(search: Search) -> None:
    prediction = prediction_create(search=search, upload=upload(iris_csv()))
    assert prediction.status == Status.QUEUED and prediction.input_name == "iris.csv"
    input_name = str(prediction.input_file.name)
    assert input_name.startswith(f"predictions/search-{search.pk}/") and input_name.endswith("/input.csv")

    assert prediction_run(prediction_id=prediction.pk) == "done"
    prediction.refresh_from_db()
    assert prediction.status == Status.DONE and prediction.n_rows == 150 and prediction.attempt == 1
    assert prediction.host and prediction.error == "" and prediction.started_at and prediction.finished_at
    assert prediction.output_file.name == input_name.replace("input.csv", "output.csv")
    with prediction.output_file.open("rb") as fh:
        header, predicted, proba = read_predictions(fh.read().decode())
    assert header == ["prediction", "proba_0", "proba_1", "proba_2"]

    reference, sklearn_best = stored_model(search), oracle()
    assert sklearn_best.get_params()["logisticregression__C"] == (search.best_params or {})["logisticregression__C"]
    for model in (reference, sklearn_best):
        assert np.array_equal(predicted, model.predict(IRIS.data))
        assert np.array_equal(proba, model.predict_proba(IRIS.data))


def test_the_upload_is_sent_to_the_cluster_once_committed(
    search: Search, django_capture_on_commit_callbacks: Any
) -> None:
    before = queued_messages()
    with django_capture_on_commit_callbacks(execute=True):
        prediction_create(search=search, upload=upload(iris_csv()))
        assert queued_messages() == before  # not before the commit
    assert queued_messages() == before + 1


def test_a_non_numeric_cell_fails_the_prediction_naming_column_and_line(search: Search) -> None:
    lines = iris_csv().decode().splitlines()
    header = next(csv.reader([lines[0]]))
    cells = next(csv.reader([lines[16]]))
    cells[header.index("petal width (cm)")] = "abc"
    lines[16] = ",".join(cells)
    prediction = prediction_create(search=search, upload=upload("\n".join(lines).encode()))

    assert prediction_run(prediction_id=prediction.pk) == "failed"
    prediction.refresh_from_db()
    assert prediction.status == Status.FAILED and prediction.n_rows is None and not prediction.output_file
    assert prediction.error == "column 'petal width (cm)' is not numeric (line 17: 'abc'); features must be numbers"
    assert prediction.finished_at is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (
            b"sepal length (cm),sepal width (cm),petal length (cm),target\n1,2,3,0\n",
            "the file has no column 'petal width (cm)'",
        ),
        (b"1,2,3,4\n5,6,7,8\n", "the first row holds numbers, not column names; add a header row"),
        (b"\xff\xfe,a\n", "the file is not UTF-8 text"),
    ],
    ids=["empty", "blank-lines", "missing-column", "no-header", "not-utf8"],
)
def test_a_file_without_the_models_columns_is_refused_at_create(search: Search, content: bytes, message: str) -> None:
    with pytest.raises(PredictError) as caught:
        prediction_create(search=search, upload=upload(content))
    assert message in caught.value.message
    assert not Prediction.objects.exists()


def test_only_the_first_line_is_checked_at_create(search: Search) -> None:
    """A bad cell further down is the worker's to find: the request never reads the whole file."""
    prediction = prediction_create(search=search, upload=upload(iris_csv() + b"abc,abc,abc,abc,abc\n"))
    assert prediction.status == Status.QUEUED
    assert prediction_run(prediction_id=prediction.pk) == "failed"
    error = Prediction.objects.get(pk=prediction.pk).error
    assert error == "column 'sepal length (cm)' is not numeric (line 152: 'abc'); features must be numbers"


def test_a_search_without_a_model_is_refused() -> None:
    search = create_search({**SPEC, "refit": False})
    with pytest.raises(PredictionRefused) as caught:
        prediction_create(search=search, upload=upload(iris_csv()))
    assert "refit: false" in caught.value.message
    assert not Prediction.objects.exists()


def test_a_duplicate_delivery_changes_nothing(search: Search) -> None:
    prediction = prediction_create(search=search, upload=upload(iris_csv()))
    assert prediction_run(prediction_id=prediction.pk) == "done"
    done = Prediction.objects.values().get(pk=prediction.pk)
    assert prediction_run(prediction_id=prediction.pk) == "skipped"
    assert Prediction.objects.values().get(pk=prediction.pk) == done
    assert prediction_run(prediction_id=prediction.pk + 1000) == "skipped"  # no such prediction (any more)


def test_a_claimed_prediction_is_not_taken_twice(search: Search) -> None:
    prediction = prediction_create(search=search, upload=upload(iris_csv()))
    assert prediction_claim(prediction_id=prediction.pk) is not None
    assert prediction_run(prediction_id=prediction.pk) == "skipped"
    row = Prediction.objects.get(pk=prediction.pk)
    assert row.status == Status.RUNNING and row.attempt == 1


def test_reconcile_fails_a_prediction_stuck_running_past_the_timeout(search: Search, settings: Any) -> None:
    settings.FANOUT_PREDICT_TIMEOUT = 30
    stuck = prediction_create(search=search, upload=upload(iris_csv()))
    recent = prediction_create(search=search, upload=upload(iris_csv()))
    for p in (stuck, recent):
        prediction_claim(prediction_id=p.pk)
    Prediction.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(seconds=31))

    assert predictions_reconcile() == 1
    stuck.refresh_from_db()
    assert stuck.status == Status.FAILED and stuck.finished_at is not None
    assert "within FANOUT_PREDICT_TIMEOUT (30 s)" in stuck.error
    assert Prediction.objects.get(pk=recent.pk).status == Status.RUNNING
    assert predictions_reconcile() == 0  # finished rows are never rewritten


def test_reconcile_resends_a_prediction_whose_message_was_lost(search: Search, settings: Any) -> None:
    from django_q.brokers import get_broker

    prediction = prediction_create(search=search, upload=upload(iris_csv()))  # on_commit never ran: no message
    assert predictions_reconcile() == 0  # not waiting long enough yet
    past = timezone.now() - timedelta(seconds=settings.FANOUT_RESEND_SECONDS + 1)
    Prediction.objects.filter(pk=prediction.pk).update(created_at=past)
    get_broker().purge_queue()
    assert predictions_reconcile() == 1
    assert queued_messages() == 1
    assert predictions_reconcile() == 0  # the message is there now


def test_deleting_the_search_deletes_its_prediction_files() -> None:
    search = run_inline(create_search(SPEC))
    prefix = f"predictions/search-{search.pk}"
    before = storage_files(prefix)  # a rolled-back test's search may have had this id before
    prediction = prediction_create(search=search, upload=upload(iris_csv()))
    assert prediction_run(prediction_id=prediction.pk) == "done"
    prediction.refresh_from_db()
    names = {str(prediction.input_file.name), str(prediction.output_file.name)}
    assert storage_files(prefix) == before | names
    search.delete()
    assert not Prediction.objects.filter(pk=prediction.pk).exists()
    assert not any(model_storage().exists(name) for name in names)
    assert storage_files(prefix) == before

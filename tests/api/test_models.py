"""A search's model through the API: its card and files (the skops file loads into scikit-learn's own best
estimator), the reason when there is none, and predictions with it: uploaded, run as the cluster runs them, and
read back."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import skops.io  # type: ignore[import-untyped]  # skops ships no type information
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from search.models import FittedModel, Prediction, Search, Status
from search.services.predictions import prediction_create, prediction_run
from tests.api.conftest import as_json, assert_error, content
from tests.conftest import create_search, run_inline
from tests.services.test_predictions import FEATURES, IRIS, SPEC, iris_csv, oracle, read_predictions

pytestmark = pytest.mark.django_db

URL = "/api/v1/searches"


def predictions_url(search: Search, *rest: object) -> str:
    return "/".join([f"{URL}/{search.pk}/predictions", *(str(r) for r in rest)]).rstrip("/")


def csv_file(data: bytes = b"", name: str = "new.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data or iris_csv(), content_type="text/csv")


# --- the model -------------------------------------------------------------------------------------------------


def test_the_card_is_the_stored_models(finished: Search, api_owner: Client) -> None:
    response = api_owner.get(f"{URL}/{finished.pk}/model")
    assert response.status_code == 200
    card = as_json(response)
    fitted = FittedModel.objects.get(search=finished)
    assert card == fitted.card
    assert finished.best_params is not None
    assert json.dumps(finished.best_params["logisticregression__C"]) in json.dumps(card)


def test_the_skops_file_is_scikit_learns_best_estimator(finished: Search, api_owner: Client) -> None:
    response = api_owner.get(f"{URL}/{finished.pk}/model.skops")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="search-{finished.pk}-model.skops"'
    data = content(response)
    assert hashlib.sha256(data).hexdigest() == FittedModel.objects.get(search=finished).card["sha256"]
    model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    best = oracle()
    assert model.get_params()["logisticregression__C"] == best.get_params()["logisticregression__C"]
    assert np.array_equal(model.predict(IRIS.data), best.predict(IRIS.data))
    assert np.array_equal(model.predict_proba(IRIS.data), best.predict_proba(IRIS.data))


def test_the_joblib_file_and_no_other_format(finished: Search, api_owner: Client) -> None:
    response = api_owner.get(f"{URL}/{finished.pk}/model.joblib")
    assert response.status_code == 200
    assert len(content(response)) == FittedModel.objects.get(search=finished).card["joblib_size"]
    for fmt in ("xyz", "json", "pickle", "skops.bak"):
        assert_error(api_owner.get(f"{URL}/{finished.pk}/model.{fmt}"), 404, "fmt")


def test_without_a_model_each_answer_says_why(owner: User, api: Client) -> None:
    search = run_inline(create_search({**SPEC, "param_grid": {"logisticregression__C": [1.0]}, "refit": False},
                                      owner=owner))  # fmt: skip
    assert search.status == Status.DONE and not FittedModel.objects.filter(search=search).exists()
    for path in ("model", "model.skops", "model.joblib"):
        body = assert_error(api.get(f"{URL}/{search.pk}/{path}"), 404, "search_id")
        assert "refit: false" in body["detail"], path
    queued = create_search(SPEC, owner=owner)
    body = assert_error(api.get(f"{URL}/{queued.pk}/model"), 404, "search_id")
    assert "0/6 fits" in body["detail"]


def test_a_prediction_without_a_model_is_refused(owner: User, api: Client) -> None:
    queued = create_search(SPEC, owner=owner)
    body = assert_error(api.post(predictions_url(queued), {"file": csv_file()}), 400, "search_id")
    assert "model" in body["detail"] and not Prediction.objects.exists()


# --- predictions ------------------------------------------------------------------------------------------------
def test_an_uploaded_csv_becomes_a_queued_prediction(finished: Search, api_owner: Client) -> None:
    response = api_owner.post(predictions_url(finished), {"file": csv_file(name="rows.csv")})
    body = as_json(response)
    assert response.status_code == 201, body
    prediction = Prediction.objects.get(pk=body["id"])
    assert prediction.search_id == finished.pk and prediction.status == Status.QUEUED
    assert body["status"] == "queued" and body["input_name"] == "rows.csv" and body["url"] is None
    assert prediction_run(prediction_id=prediction.pk) == "done"
    done = as_json(api_owner.get(predictions_url(finished, prediction.pk)))
    assert done["status"] == "done" and done["n_rows"] == 150


@pytest.fixture
def predicted(finished: Search) -> Prediction:
    """A prediction of every iris row, run here as a cluster worker runs it."""
    prediction = prediction_create(search=finished, upload=csv_file())
    assert prediction_run(prediction_id=prediction.pk) == "done"
    return prediction


def test_a_done_prediction_says_so_with_its_files_url(
    finished: Search, predicted: Prediction, api_owner: Client
) -> None:
    body = as_json(api_owner.get(predictions_url(finished, predicted.pk)))
    assert body["status"] == "done" and body["n_rows"] == 150 and body["error"] == ""
    assert body["id"] == predicted.pk and body["search_id"] == finished.pk and body["finished_at"]
    assert body["url"] == f"http://testserver{predictions_url(finished, predicted.pk)}.csv"


def test_a_done_predictions_csv_is_the_models_predictions(
    finished: Search, predicted: Prediction, api_owner: Client
) -> None:
    response = api_owner.get(f"{predictions_url(finished, predicted.pk)}.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    header, labels, proba = read_predictions(content(response).decode())
    assert header == ["prediction", "proba_0", "proba_1", "proba_2"]
    best = oracle()
    assert np.array_equal(labels, best.predict(IRIS.data)) and np.array_equal(proba, best.predict_proba(IRIS.data))


def test_a_queued_predictions_csv_is_404(finished: Search, api_owner: Client) -> None:
    queued = prediction_create(search=finished, upload=csv_file())
    body = assert_error(api_owner.get(f"{predictions_url(finished, queued.pk)}.csv"), 404)
    assert "queued" in body["detail"]


@pytest.mark.parametrize(
    "header", [FEATURES[:-1], [f.upper() for f in FEATURES], [FEATURES[0], FEATURES[0], *FEATURES[1:3]]]
)
def test_a_header_without_the_models_columns_is_400_naming_it(
    finished: Search, api_owner: Client, header: list[str]
) -> None:
    data = (",".join(header) + "\n" + ",".join("1.0" for _ in header) + "\n").encode()
    body = assert_error(api_owner.post(predictions_url(finished), {"file": csv_file(data)}), 400, "file")
    missing = [f for f in FEATURES if f not in header]
    assert (missing and missing[0] in body["detail"]) or FEATURES[0] in body["detail"], body
    assert not Prediction.objects.exists()


def test_a_prediction_upload_without_a_file_is_400(finished: Search, api_owner: Client) -> None:
    assert_error(api_owner.post(predictions_url(finished), {}), 400, "file")
    assert not Prediction.objects.exists()


def test_another_users_prediction_is_404(finished: Search, predicted: Prediction, api_owner: Client, other: User,
                                         api_other: Client) -> None:  # fmt: skip
    theirs = Prediction.objects.create(search=create_search(SPEC, owner=other), input_name="theirs.csv")
    for path in (predictions_url(finished, theirs.pk), predictions_url(theirs.search, theirs.pk)):
        body = assert_error(api_owner.get(path), 404)
        assert "theirs" not in body["detail"]
    for path in (predictions_url(finished, predicted.pk), predictions_url(theirs.search, predicted.pk)):
        assert_error(api_other.get(path), 404)
    assert_error(api_owner.get(predictions_url(finished, 0)), 404)

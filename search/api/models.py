"""A search's model (its card and files) and predictions with it, made on the cluster."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest
from ninja import File, Router, Status
from ninja.files import UploadedFile

from search.api.auth import upload_guard
from search.api.datasets import ERRORS
from search.api.errors import ApiError, is_row_id
from search.api.schemas import PredictionOut, prediction_out
from search.api.searches import search_of
from search.downloads import stored_download
from search.engine.predict import PredictError
from search.models import FittedModel, Prediction
from search.models import Status as RunStatus
from search.selectors.models import model_of, no_model_reason
from search.services.predictions import PredictionRefused, prediction_create
from search.uploads import over_limit

router = Router(tags=["models"])
FORMATS = ("skops", "joblib")


@router.get("/searches/{search_id}/model", response={200: dict[str, Any], **ERRORS}, url_name="model-card")
def model_card(request: HttpRequest, search_id: int) -> FileResponse:
    """The model's card: what it is, how it was made, its held-out scores and its files' SHA-256."""
    search = search_of(request, search_id)
    fitted = model_of(search)
    if fitted is None:
        raise ApiError(404, no_model_reason(search), "search_id")
    return stored_download(*fitted.download("json"))


@router.get("/searches/{search_id}/model.{fmt}", response={200: bytes, **ERRORS}, url_name="model-file")
def model_file(request: HttpRequest, search_id: int, fmt: str) -> FileResponse:
    """`skops` (load it with skops.io after checking its types) or `joblib` (a pickle: only if you trust it)."""
    search = search_of(request, search_id)
    if fmt not in FORMATS:
        raise ApiError(404, f"no model file .{fmt}: the formats are {', '.join(FORMATS)}", "fmt")
    fitted = model_of(search)
    if fitted is None:
        raise ApiError(404, no_model_reason(search), "search_id")
    assert fmt in FittedModel.DOWNLOADS
    return stored_download(*fitted.download(fmt))


@router.post("/searches/{search_id}/predictions", response={201: PredictionOut, **ERRORS}, url_name="prediction-create")
def prediction_new(
    request: HttpRequest, search_id: int, file: File[UploadedFile | None] = None
) -> Status[PredictionOut]:
    """A CSV file with the model's feature columns; the cluster predicts it (poll the prediction's status)."""
    search = search_of(request, search_id)
    guard = upload_guard(request)
    if guard is not None and guard.exceeded:
        raise ApiError(413, over_limit(guard), "file")
    if file is None:
        raise ApiError(400, "no file came in: send a CSV file as the multipart field 'file'", "file")
    try:
        prediction = prediction_create(search=search, upload=file)
    except PredictionRefused as exc:
        raise ApiError(400, exc.message, "search_id") from None
    except PredictError as exc:
        raise ApiError(400, f"{file.name}: {exc.message}", "file") from None
    return Status(201, prediction_out(request, prediction))


def _prediction(request: HttpRequest, search_id: int, prediction_id: int) -> Prediction:
    search = search_of(request, search_id)
    found = search.predictions.filter(pk=prediction_id).first() if is_row_id(prediction_id) else None
    if found is None:
        raise ApiError(404, f"no prediction {prediction_id} of search {search_id} among yours", "prediction_id")
    return found


@router.get(
    "/searches/{search_id}/predictions/{int:prediction_id}", response={200: PredictionOut, **ERRORS},
    url_name="prediction-detail",
)  # fmt: skip
def prediction_detail(request: HttpRequest, search_id: int, prediction_id: int) -> PredictionOut:
    return prediction_out(request, _prediction(request, search_id, prediction_id))


@router.get(
    "/searches/{search_id}/predictions/{prediction_id}.csv", response={200: bytes, **ERRORS},
    url_name="prediction-file",
)  # fmt: skip
def prediction_file(request: HttpRequest, search_id: int, prediction_id: int) -> FileResponse:
    prediction = _prediction(request, search_id, prediction_id)
    if prediction.status != RunStatus.DONE:
        raise ApiError(404, f"prediction {prediction_id} is {prediction.status}; its file comes once it is done")
    name = f"search-{search_id}-prediction-{prediction.pk}.csv"
    return stored_download(prediction.output_file, name, "text/csv")

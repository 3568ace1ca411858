"""Data sets: upload a CSV file or NumPy `.npz` arrays, list them, see one, delete one no search uses."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from search.api.auth import upload_guard
from search.api.errors import ApiError, is_row_id
from search.api.schemas import DatasetOut, DatasetPage, ErrorOut, dataset_out
from search.engine.datasets import DatasetError
from search.engine.spec import SpecError
from search.models import Dataset
from search.selectors.datasets import datasets_of, owner_dataset
from search.services import datasets as datasets_service
from search.uploads import over_limit

router = Router(tags=["datasets"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 413: ErrorOut, 429: ErrorOut}


class PageQuery(Schema):
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=2**31 - 1)


def dataset_of(request: HttpRequest, dataset_id: int) -> Dataset:
    """The user's own data set, or 404 (another user's is indistinguishable from a missing one)."""
    if not is_row_id(dataset_id):
        raise Http404(f"no data set {dataset_id} among yours")
    try:
        return owner_dataset(owner=request.user, dataset_id=dataset_id)
    except SpecError as exc:  # the same words for a missing row and another user's
        raise Http404(exc.message) from None


@router.post("/datasets", response={200: DatasetOut, 201: DatasetOut, **ERRORS}, url_name="dataset-upload")
def dataset_upload(
    request: HttpRequest,
    file: File[UploadedFile | None] = None,
    name: Form[str] = "",
    target: Form[str] = "",
) -> Status[DatasetOut]:
    """A CSV file (with `target`, the column to predict) or an `.npz` with arrays `X`, `y` and optionally
    `groups` (read with allow_pickle=False). 201 when stored; 200 when this user had the same bytes already."""
    guard = upload_guard(request)
    if guard is not None and guard.exceeded:
        raise ApiError(413, over_limit(guard), "file")
    if file is None:
        raise ApiError(400, "no file came in: send a CSV or .npz file as the multipart field 'file'", "file")
    filename = str(file.name or "")
    try:
        dataset, created = datasets_service.dataset_upload_file(
            owner=request.user, name=name.strip()[:200], content=file.read(), filename=filename, target=target.strip()
        )
    except datasets_service.TargetRefused as exc:
        raise ApiError(400, str(exc), "target") from None
    except DatasetError as exc:  # as the upload form does: read_csv's "target column …" is the target's
        message = str(exc)
        field = "target" if message.startswith("target column") else "file"
        raise ApiError(400, f"{filename}: {message}", field) from None
    return Status(201 if created else 200, dataset_out(dataset, created))


@router.get("/datasets", response={200: DatasetPage, **ERRORS}, url_name="dataset-list")
def dataset_list(request: HttpRequest, page: Query[PageQuery]) -> DatasetPage:
    qs = datasets_of(owner=request.user)
    rows = qs[page.offset : page.offset + page.limit]
    return DatasetPage(count=qs.count(), items=[dataset_out(d) for d in rows])


@router.get("/datasets/{dataset_id}", response={200: DatasetOut, **ERRORS}, url_name="dataset-detail")
def dataset_detail(request: HttpRequest, dataset_id: int) -> DatasetOut:
    return dataset_out(dataset_of(request, dataset_id))


@router.delete("/datasets/{dataset_id}", response={204: None, **ERRORS}, url_name="dataset-delete")
def dataset_delete(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = dataset_of(request, dataset_id)
    try:
        datasets_service.dataset_delete(dataset=dataset)
    except datasets_service.DatasetInUse as exc:
        raise ApiError(400, f"not deleted: {exc}", "dataset_id") from None
    return HttpResponse(status=204)

"""What the API answers with, typed (django-ninja writes them into /api/v1/openapi.json) and built from rows
by small functions, so every endpoint shows a row the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Schema

from search.models import Dataset, Prediction, Search, Status
from search.selectors.searches import failures, progress


class ErrorOut(Schema):
    detail: str
    field: str | None = None


class EstimatorOut(Schema):
    name: str
    kind: str
    module: str


class ParamOut(Schema):
    name: str
    default: Any = None


class EstimatorDetailOut(Schema):
    name: str
    task: str
    steps: list[str]
    params: list[ParamOut]
    scorers: list[str]


class DatasetOut(Schema):
    id: int
    name: str
    kind: str
    n_samples: int
    n_features: int
    has_groups: bool
    target: str | None = None
    created_at: datetime
    created: bool | None = None  # on upload: False when this user had uploaded the same bytes before


class DatasetPage(Schema):
    count: int
    items: list[DatasetOut]


class FailureOut(Schema):
    message: str  # the last line of the error, as scikit-learn's FitFailedWarning groups them
    count: int
    candidates: list[dict[str, Any]]  # the parameters of (up to 10 of) the candidates that failed with it


class SearchOut(Schema):
    id: int
    name: str
    status: str
    strategy: str
    estimator: str
    task: str
    dataset_id: int | None
    n_candidates: int
    n_splits: int
    n_fits: int
    n_fits_done: int
    n_fits_failed: int
    metrics: list[str]
    refit_metric: str
    refit: bool | str
    best_index: int | None
    best_params: dict[str, Any] | None
    best_score: float | None
    refit_time: float | None
    refit_error: str | None
    cores_used: int | None
    wall_time: float | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str
    spec: dict[str, Any] | None = None  # as stored (in the detail, not in lists: explicit folds can be MBs)
    progress: dict[str, Any] | None = None
    failures: list[FailureOut] | None = None  # failed fits grouped by error (in the detail, not in lists)


class SearchPage(Schema):
    count: int
    items: list[SearchOut]


class PredictionOut(Schema):
    id: int
    search_id: int
    status: str
    input_name: str
    n_rows: int | None
    error: str
    created_at: datetime
    finished_at: datetime | None
    url: str | None  # the CSV file once done


def dataset_out(dataset: Dataset, created: bool | None = None) -> DatasetOut:
    source = dataset.source or {}
    return DatasetOut(
        id=dataset.pk, name=dataset.name, kind=dataset.kind, n_samples=dataset.n_samples,
        n_features=dataset.n_features, has_groups=bool(source.get("groups")), target=source.get("target"),
        created_at=dataset.created_at, created=created,
    )  # fmt: skip


def search_out(request: HttpRequest, search: Search, *, with_progress: bool = False) -> SearchOut:
    live = progress(search) if with_progress else None  # reads the counters again, as the page's poll does
    return SearchOut(
        id=search.pk, name=search.name, status=search.status, strategy=search.strategy,
        estimator=search.estimator, task=search.task, dataset_id=search.dataset_id,
        n_candidates=search.n_candidates, n_splits=search.n_splits, n_fits=search.n_fits,
        n_fits_done=search.n_fits_done, n_fits_failed=search.n_fits_failed, metrics=list(search.metrics),
        refit_metric=search.refit_metric, refit=search.stored.refit, best_index=search.best_index,
        best_params=search.best_params, best_score=search.best_score, refit_time=search.refit_time,
        refit_error=search.refit_error or None, cores_used=search.cores_used, wall_time=search.wall_time,
        error=search.error or "", created_at=search.created_at, started_at=search.started_at,
        finished_at=search.finished_at, url=request.build_absolute_uri(reverse("search-detail", args=[search.pk])),
        spec=search.spec if with_progress else None, progress=live,
        failures=[FailureOut(**vars(g)) for g in failures(search)] if with_progress else None,
    )  # fmt: skip


def prediction_out(request: HttpRequest, prediction: Prediction) -> PredictionOut:
    done = prediction.status == Status.DONE
    path = reverse("api-v1:prediction-file", kwargs={"search_id": prediction.search_id, "prediction_id": prediction.pk})
    return PredictionOut(
        id=prediction.pk, search_id=prediction.search_id, status=prediction.status,
        input_name=prediction.input_name, n_rows=prediction.n_rows, error=prediction.error or "",
        created_at=prediction.created_at, finished_at=prediction.finished_at,
        url=request.build_absolute_uri(path) if done else None,
    )  # fmt: skip

"""Predictions with a search's model: the page (upload a CSV file, see the predictions) and the download.

The upload is refused by size before it is read, as `views.datasets.dataset_upload` does (search/uploads.py);
the request only checks the file's first line and stores it; the cluster predicts it (services.predictions).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from search.downloads import stored_download
from search.engine.predict import PredictError
from search.models import Prediction, Search, Status
from search.selectors.models import model_of, no_model_reason, predictions_of
from search.selectors.searches import search_for
from search.services.predictions import PredictionRefused, features_of, prediction_create
from search.uploads import UploadLimit, declared_over_limit, guard_upload, over_limit

SHOWN = 100  # the newest predictions listed on the page


@csrf_exempt  # only until the size is checked: the CSRF check reads the whole body, so it runs in _upload
@login_required
@require_http_methods(["GET", "POST"])
def search_predict(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    if request.method != "POST":
        return _page(request, search)
    if refusal := declared_over_limit(request):  # refused before one byte of the body is read
        return _page(request, search, error=refusal, status=413)
    guard = guard_upload(request)
    return _upload(request, search, guard)


@csrf_protect
def _upload(request: HttpRequest, search: Search, guard: UploadLimit) -> HttpResponse:
    upload = request.FILES.get("file")  # parsed now, through guard, unless the CSRF check already did
    if guard.exceeded:
        return _page(request, search, error=over_limit(guard), status=413)
    if upload is None:
        return _page(request, search, error="no file came in; choose a .csv file with a header row", status=400)
    try:
        prediction = prediction_create(search=search, upload=upload)
    except PredictionRefused as exc:
        return _page(request, search, error=exc.message, status=400)
    except PredictError as exc:
        return _page(request, search, error=f"{upload.name}: {exc.message}", status=400)
    messages.success(request, f"Prediction {prediction.pk} of {prediction.input_name!r} is queued on the cluster.")
    return redirect("search-predict", pk=search.pk)


def _page(request: HttpRequest, search: Search, *, error: str = "", status: int = 200) -> HttpResponse:
    fitted = model_of(search)
    predictions = predictions_of(search, limit=SHOWN)
    context = {
        "search": search,
        "fitted": fitted,
        "features": features_of(fitted) if fitted else [],
        "target": fitted.card["dataset"].get("target") if fitted else None,
        "no_model": "" if fitted else no_model_reason(search),
        "predictions": predictions,
        # Reload (with a GET) while any is queued or running; not on a refused upload, whose message would go.
        "refresh": request.method == "GET" and any(p.status in Status.ACTIVE for p in predictions),
        "error": error,
        "max_mb": settings.FANOUT_MAX_UPLOAD_MB,
        "timeout": settings.FANOUT_PREDICT_TIMEOUT,
        "nav": "searches",
    }
    return render(request, "searches/predict.html", context, status=status)


@require_GET
@login_required
def search_prediction_download(request: HttpRequest, pk: int, prediction_id: int) -> FileResponse:
    """A finished prediction's CSV file, streamed from the model storage; 404 unless done and the user's."""
    search = search_for(request.user, pk)
    prediction = get_object_or_404(Prediction, pk=prediction_id, search=search, status=Status.DONE)
    return stored_download(prediction.output_file, f"search-{search.pk}-prediction-{prediction.pk}.csv", "text/csv")

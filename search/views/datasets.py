"""Data set pages: a user's data sets, CSV and .npz upload, a preview with class balance, delete when unused."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from search.forms.datasets import DatasetUploadForm
from search.models import Dataset
from search.selectors.datasets import dataset_preview, datasets_of
from search.services import datasets as datasets_service
from search.services.datasets import DatasetInUse
from search.uploads import UploadLimit, declared_over_limit, guard_upload, over_limit

PER_PAGE = 25


@login_required
@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(datasets_of(owner=request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "datasets/list.html", {"page": page, "query": "", "nav": "datasets"})


@csrf_exempt  # only until the size is checked: the CSRF check reads the whole body, so it runs in _upload
@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _upload(request, None)
    if refusal := declared_over_limit(request):  # refused before one byte of the body is read
        return _too_large(request, refusal)
    return _upload(request, guard_upload(request))


def _too_large(request: HttpRequest, message: str, status: int = 413) -> HttpResponse:
    context = {"form": DatasetUploadForm.refused(message), "nav": "datasets", "max_mb": settings.FANOUT_MAX_UPLOAD_MB}
    return render(request, "datasets/upload.html", context, status=status)


@csrf_protect
def _upload(request: HttpRequest, guard: UploadLimit | None) -> HttpResponse:
    files = request.FILES if request.method == "POST" else None  # parsed now, if the CSRF check has not, via guard
    if guard is not None and guard.exceeded:  # the form's own size error, made while the file streamed in
        return _too_large(request, over_limit(guard), status=200)
    form = DatasetUploadForm(request.POST, files) if request.method == "POST" else DatasetUploadForm()
    if request.method == "POST" and form.is_valid():
        dataset, created = datasets_service.dataset_upload_file(owner=request.user, **form.upload_args())
        if created:
            shape = f"{dataset.n_samples} rows × {dataset.n_features} features"
            groups = ", with groups" if dataset.has_groups else ""
            messages.success(request, f"Uploaded {dataset.name!r}: {shape}{groups}.")
        elif target := form.cleaned_data["target"]:
            messages.info(request, f"This file with target {target!r} was already uploaded as {dataset.name!r}.")
        else:
            messages.info(request, f"This file was already uploaded as {dataset.name!r}.")
        return redirect("dataset-detail", pk=dataset.pk)
    context = {"form": form, "nav": "datasets", "max_mb": settings.FANOUT_MAX_UPLOAD_MB}
    return render(request, "datasets/upload.html", context)


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk, owner=request.user)
    searches = list(dataset.searches.order_by("-created_at", "-id").only("name", "status", "estimator", "created_at"))
    context = {
        "dataset": dataset,
        "preview": dataset_preview(dataset=dataset),
        "searches": searches,
        "size_kb": len(dataset.content) / 1024 if dataset.content is not None else None,
        "nav": "datasets",
    }
    return render(request, "datasets/detail.html", context)


@login_required
@require_POST
def dataset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset.objects.defer("content"), pk=pk, owner=request.user)
    name = dataset.name
    try:
        datasets_service.dataset_delete(dataset=dataset)
    except DatasetInUse as exc:
        messages.error(request, f"Not deleted: {exc}.")
        return redirect("dataset-detail", pk=pk)
    messages.success(request, f"Deleted data set {name!r}.")
    return redirect("dataset-list")

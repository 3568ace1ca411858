"""Search pages: list, new (with duplicate-and-edit), detail with live progress, leaderboard, actions.

Thin views: parse the request, call a selector or a service, render or redirect. The charts are in views.charts.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from search.engine.spec import SpecError
from search.forms.searches import SearchForm, initial_from
from search.models import Status
from search.selectors import searches as searches_selector
from search.selectors.export import NotExportable, search_export_chunks
from search.selectors.models import model_panel
from search.selectors.searches import (
    best_comparison,
    estimators_used,
    failures,
    halving_rounds,
    leaderboard,
    progress,
    reuse_by_candidate,
    search_for,
    varied_params,
)
from search.selectors.studies import study_axes, study_label, study_table
from search.services import searches as searches_service
from search.services.estimates import estimate_plan
from search.services.scaling import study_create
from search.services.searches import plan_check_data, search_create

PER_PAGE = 25
LEADERBOARD_PER_PAGE = 50
EXPORT_STREAM_CANDIDATES = 1000  # exports of more candidates are streamed


@require_GET
@login_required
def search_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    estimator = request.GET.get("estimator", "")
    sort = request.GET.get("sort", "-created")
    qs = searches_selector.search_list(request.user, status=status, estimator=estimator, sort=sort)
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    keep = "&".join(f"{k}={v}" for k, v in (("status", status), ("estimator", estimator), ("sort", sort)) if v)
    return render(request, "searches/list.html", {
        "nav": "searches", "page": page, "status": status, "estimator": estimator, "sort": sort,
        "statuses": Status.choices, "estimators": estimators_used(request.user),
        "query": f"{keep}&" if keep else "", "filters": f"status={status}&estimator={estimator}&",
    })  # fmt: skip


@login_required
def search_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = SearchForm(request.POST, owner=request.user)
        if form.is_valid() and form.plan is not None:
            try:
                search = search_create(plan=form.plan, owner=request.user)
            except SpecError as exc:  # data-dependent checks (folds vs classes, target type)
                form.add_spec_error(exc)
            else:
                messages.success(request, f"Search {search.pk} queued: {search.n_fits} fits.")
                return redirect("search-detail", pk=search.pk)
        status = 400
    else:
        initial: dict[str, Any] = {}
        source = request.GET.get("from", "")
        if source.isascii() and source.isdigit():  # "²" is a digit to isdigit() but not to int()
            initial = initial_from(search_for(request.user, int(source)))
        form = SearchForm(initial=initial, owner=request.user)
        status = 200
    return render(request, "searches/new.html", {"nav": "new", "form": form}, status=status)


@require_GET
@login_required
def search_detail(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    study = search.studies.order_by("-pk").first()
    varied = varied_params(search) if search.status == Status.DONE else None  # the candidates' own values
    return render(request, "searches/detail.html", {
        "nav": "searches", "search": search, "progress": progress(search),
        "study": study_table(study) if study else None,
        "study_axes": study_axes() if search.status == Status.DONE else ["processes"],
        "params": sorted(search.stored.varied) if varied is None else varied,
        "rounds": halving_rounds(search),
        "has_train": search.stored.return_train_score,
        "comparison": best_comparison(search),
        **(model_panel(search) if search.is_finished else {}),
    })  # fmt: skip


@require_GET
@login_required
def search_progress(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(progress(search_for(request.user, pk)))


@require_GET
@login_required
def search_leaderboard(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    sort = request.GET.get("sort", "rank")
    page = Paginator(leaderboard(search, sort), LEADERBOARD_PER_PAGE).get_page(request.GET.get("page"))
    reuse = reuse_by_candidate(search, [c.pk for c in page.object_list])
    rows = [
        {
            "c": c,
            "cells": [
                ((c.mean_test or {}).get(m), (c.std_test or {}).get(m), (c.rank_test or {}).get(m))
                for m in search.metrics
            ],
            "train": (c.mean_train or {}).get(search.refit_metric),
            "reuse": reuse.get(c.pk),
        }
        for c in page.object_list
    ]
    return render(request, "searches/_leaderboard.html", {
        "search": search, "page": page, "rows": rows, "sort": sort, "query": f"sort={sort}&",
        "failures": failures(search), "metrics": search.metrics,
    })  # fmt: skip


@require_GET
@login_required
def search_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponseBase:
    search = search_for(request.user, pk)
    if fmt not in ("csv", "json"):
        raise Http404("unknown format")
    try:
        chunks = search_export_chunks(search=search, fmt=fmt)
    except NotExportable as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    content_type = "text/csv" if fmt == "csv" else "application/json"
    response: HttpResponseBase
    if search.n_candidates > EXPORT_STREAM_CANDIDATES:  # the file is never whole in memory
        response = StreamingHttpResponse(chunks, content_type=content_type)
    else:
        response = HttpResponse("".join(chunks), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="search-{search.pk}.{fmt}"'
    return response


@require_POST
@login_required
def search_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    if searches_service.search_cancel(search=search):
        messages.success(request, f"Search {search.pk} cancelled.")
    else:
        messages.warning(request, f"Search {search.pk} had already finished ({search.status}).")
    return redirect("search-detail", pk=search.pk)


@require_POST
@login_required
def search_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    try:
        new = searches_service.search_rerun(search=search)
    except SpecError as exc:
        messages.error(request, f"Cannot rerun: {exc}")
        return redirect("search-detail", pk=search.pk)
    messages.success(request, f"Search {search.pk} rerun as search {new.pk}.")
    return redirect("search-detail", pk=new.pk)


@require_POST
@login_required
def search_study(request: HttpRequest, pk: int) -> HttpResponse:
    search = search_for(request.user, pk)
    if search.status != Status.DONE:
        messages.error(request, "A scaling study reruns a finished search: wait until this one is done.")
        return redirect("search-detail", pk=search.pk)
    try:
        study = study_create(search=search, axis=request.POST.get("axis", "processes"))
    except (SpecError, ValueError) as exc:
        messages.error(request, f"Cannot start a scaling study: {exc}")
        return redirect("search-detail", pk=search.pk)
    messages.success(
        request, f"Scaling study started: {study.n_candidates} candidates at {study_label(study)}, "
        "one run after another.",
    )  # fmt: skip
    return redirect("search-detail", pk=search.pk)


@require_POST
@login_required
def search_estimate(request: HttpRequest) -> JsonResponse:
    """The new-search form, checked and estimated as it is filled in (nothing is stored)."""
    form = SearchForm(request.POST, owner=request.user)
    if not form.is_valid() or form.plan is None:
        return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
    try:  # what would only fail on submit: folds against classes, scorer against target, halving against rows
        data_plan = plan_check_data(form.plan, owner=request.user)
    except SpecError as exc:
        form.add_spec_error(exc)
        return JsonResponse({"ok": False, "errors": form.errors.get_json_data()}, status=400)
    estimate = estimate_plan(plan=form.plan, owner=request.user, data_plan=data_plan)
    return JsonResponse({"ok": True, "estimate": estimate.as_dict(), "text": estimate.line()})

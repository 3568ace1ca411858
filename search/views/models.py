"""A search's model: the panel on the detail page and the downloads (skops, joblib behind a warning, card)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from search.downloads import stored_download
from search.selectors.models import model_of, model_panel
from search.selectors.searches import search_for

DOWNLOADS = {"skops": "skops_file", "joblib": "joblib_file", "json": "card_file"}


@require_GET
@login_required
def search_model(request: HttpRequest, pk: int) -> HttpResponse:
    """The model panel (loaded into the detail page once the search is over)."""
    search = search_for(request.user, pk)
    return render(request, "searches/_model.html", {"search": search, **model_panel(search)})


@require_GET
@login_required
def search_model_download(request: HttpRequest, pk: int, fmt: str) -> FileResponse:
    """The model file, streamed from the model storage; 404 for another user's search or without a model."""
    search = search_for(request.user, pk)
    fitted = model_of(search)
    if fmt not in DOWNLOADS or fitted is None:
        raise Http404("no such model file")
    name = f"search-{search.pk}-card.json" if fmt == "json" else f"search-{search.pk}-model.{fmt}"
    content_type = "application/json" if fmt == "json" else "application/octet-stream"
    return stored_download(getattr(fitted, DOWNLOADS[fmt]), name, content_type)

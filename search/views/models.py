"""A search's model: the panel on the detail page and the downloads (skops, joblib behind a warning, card)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from search.downloads import stored_download
from search.models import FittedModel
from search.selectors.models import model_of, model_panel
from search.selectors.searches import search_for


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
    if fmt not in FittedModel.DOWNLOADS or fitted is None:
        raise Http404("no such model file")
    return stored_download(*fitted.download(fmt))

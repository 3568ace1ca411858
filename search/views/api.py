"""Small JSON endpoints for the new-search form: an estimator's parameters and a generator's options."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from search.engine import datasets
from search.engine.describe import describe, jsonable
from search.forms.searches import SEP


@require_GET
@login_required
def estimator_params(request: HttpRequest, name: str) -> JsonResponse:
    """`StandardScaler>SVC` or `SVC`: its tunable parameters with their defaults, and its task."""
    steps = [s for s in request.GET.get("pre", "").split(SEP) if s] + name.split(SEP)
    try:
        described = describe(steps)
    except KeyError as exc:
        raise Http404(str(exc.args[0])) from None
    return JsonResponse({**described, "name": name})


@require_GET
@login_required
def generator_options(request: HttpRequest, name: str) -> JsonResponse:
    if name not in datasets.GENERATORS:
        raise Http404("unknown generator")
    options = datasets.generator_options(name)
    return JsonResponse({"name": name, "options": {k: jsonable(v) for k, v in options.items()}})

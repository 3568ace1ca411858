"""Small JSON endpoints for the new-search form: an estimator's parameters and a generator's options."""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from search.engine import datasets, registry
from search.engine.validate import scorers_for
from search.forms.searches import SEP


def _jsonable(value: Any) -> Any:
    """A default as JSON: numbers, strings, booleans, null; anything else as its repr (shown, not sent back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


@require_GET
@login_required
def estimator_params(request: HttpRequest, name: str) -> JsonResponse:
    """`StandardScaler>SVC` or `SVC`: its tunable parameters with their defaults, and its task."""
    steps = [s for s in request.GET.get("pre", "").split(SEP) if s] + name.split(SEP)
    try:
        infos = [registry.lookup(s) for s in steps]
    except KeyError as exc:
        raise Http404(str(exc.args[0])) from None
    estimator = registry.build(tuple((i.name, i.module) for i in infos))
    params = estimator.get_params(deep=True)
    if len(infos) > 1:  # a pipeline: only the steps' own parameters are worth tuning
        params = {k: v for k, v in params.items() if "__" in k}
    task = "classification" if infos[-1].kind == "classifier" else "regression"
    return JsonResponse({
        "name": name, "task": task, "steps": [i.name for i in infos],
        "params": [{"name": k, "default": _jsonable(v)} for k, v in sorted(params.items())],
        "scorers": scorers_for(task),
    })  # fmt: skip


@require_GET
@login_required
def generator_options(request: HttpRequest, name: str) -> JsonResponse:
    if name not in datasets.GENERATORS:
        raise Http404("unknown generator")
    options = datasets.generator_options(name)
    return JsonResponse({"name": name, "options": {k: _jsonable(v) for k, v in options.items()}})

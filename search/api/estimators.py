"""The estimator registry: the only estimators a spec may name, and one estimator's parameters."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from ninja import Router

from search.api.schemas import ErrorOut, EstimatorDetailOut, EstimatorOut
from search.engine import registry
from search.engine.describe import describe

router = Router(tags=["estimators"])
SEP = ">"  # a pipeline's steps in one path segment: StandardScaler>SVC


@router.get("/estimators", response=list[EstimatorOut], url_name="estimator-list")
def estimator_list(request: HttpRequest) -> list[EstimatorOut]:
    infos = sorted(registry.registry().values(), key=lambda i: i.name)
    return [EstimatorOut(name=i.name, kind=str(i.kind), module=i.module) for i in infos]


@router.get("/estimators/{name}", response={200: EstimatorDetailOut, 404: ErrorOut}, url_name="estimator-detail")
def estimator_detail(request: HttpRequest, name: str) -> EstimatorDetailOut:
    try:
        return EstimatorDetailOut(**describe([s for s in name.split(SEP) if s] or [name]))
    except KeyError as exc:
        raise Http404(str(exc.args[0])) from None

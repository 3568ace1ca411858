"""Searches: create one from a spec (the one `runsearch` takes), list, detail with live progress, cancel,
rerun, and the export of its `cv_results`. The same services and selectors as the pages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Body, Query, Router, Status
from pydantic import Field

from search.api.datasets import ERRORS, PageQuery
from search.api.errors import ApiError, is_row_id
from search.api.schemas import SearchOut, SearchPage, search_out
from search.models import Search
from search.models import Status as RunStatus
from search.selectors import searches as searches_selector
from search.selectors.export import NotExportable, search_export_text
from search.services import searches as searches_service

router = Router(tags=["searches"])


class SearchQuery(PageQuery):
    status: str = Field("", description="queued, running, done, failed or cancelled; all when empty")


def search_of(request: HttpRequest, search_id: int) -> Search:
    """The user's own search, or 404 (another user's is indistinguishable from a missing one)."""
    if not is_row_id(search_id):
        raise ApiError(404, f"no search {search_id} among yours")
    return searches_selector.search_for(request.user, search_id)


@router.post("/searches", response={201: SearchOut, **ERRORS}, url_name="search-create")
def search_create(request: HttpRequest, spec: Body[dict[str, Any]]) -> Status[SearchOut]:
    """Validate the spec with every check `runsearch` makes, store the search and queue its work units.
    A data set is bundled, generated, or one of yours by id: the API reads no file of the server's."""
    dataset = spec.get("dataset")
    if isinstance(dataset, dict) and "csv" in dataset:
        raise ApiError(
            400, "the API reads no file on the server: upload it with POST /api/v1/datasets, then give "
            '"dataset": {"id": N}', "dataset.csv",
        )  # fmt: skip
    plan = searches_service.plan_search(spec)
    search = searches_service.search_create(plan=plan, owner=request.user)
    return Status(201, search_out(request, search, with_progress=True))


@router.get("/searches", response={200: SearchPage, **ERRORS}, url_name="search-list")
def search_list(request: HttpRequest, query: Query[SearchQuery]) -> SearchPage:
    if query.status and query.status not in RunStatus.values:
        raise ApiError(400, f"expected one of {', '.join(RunStatus.values)}, got {query.status!r}", "status")
    qs = searches_selector.search_list(request.user, status=query.status)
    rows = qs[query.offset : query.offset + query.limit]
    return SearchPage(count=qs.count(), items=[search_out(request, s) for s in rows])


@router.get("/searches/{search_id}", response={200: SearchOut, **ERRORS}, url_name="search-detail")
def search_detail(request: HttpRequest, search_id: int) -> SearchOut:
    return search_out(request, search_of(request, search_id), with_progress=True)


@router.post("/searches/{search_id}/cancel", response={200: SearchOut, **ERRORS}, url_name="search-cancel")
def search_cancel(request: HttpRequest, search_id: int) -> SearchOut:
    """Cancel a queued or running search; a finished one is answered unchanged."""
    search = search_of(request, search_id)
    searches_service.search_cancel(search=search)
    return search_out(request, search, with_progress=True)


@router.post("/searches/{search_id}/rerun", response={201: SearchOut, **ERRORS}, url_name="search-rerun")
def search_rerun(request: HttpRequest, search_id: int) -> Status[SearchOut]:
    """A new search with the same spec and data set (the old one is kept and linked)."""
    new = searches_service.search_rerun(search=search_of(request, search_id))
    return Status(201, search_out(request, new, with_progress=True))


@router.get("/searches/{search_id}/cv_results", response={200: dict[str, Any], **ERRORS}, url_name="search-results")
def search_cv_results(request: HttpRequest, search_id: int) -> HttpResponse:
    """The export: `{"search": {...}, "cv_results": {...}}`, cv_results in scikit-learn's layout (null for NaN)."""
    search = search_of(request, search_id)
    try:
        text = search_export_text(search=search, fmt="json")
    except NotExportable as exc:
        raise ApiError(400, str(exc), "search_id") from None
    return HttpResponse(text, content_type="application/json")

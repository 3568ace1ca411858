"""The API's errors: one JSON shape, `{"detail": message, "field": spec key or parameter or null}`, for every
status it answers with (400, 401, 403, 404, 413, 429), and never an HTML page (docs/api.md, Errors)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from search.engine.spec import SpecError


class ApiError(Exception):
    """An answer other than 2xx, with the field at fault; `retry_after` (seconds) for a 429."""

    def __init__(self, status: int, detail: str, field: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


def is_row_id(value: int) -> bool:
    """Whether `value` can be a primary key: a path's id outside 1..2**63-1 is no row (and would overflow the
    database's integer, a 500, if it were looked up)."""
    return 0 < value < 2**63


def error_body(detail: str, field: str | None = None) -> dict[str, Any]:
    return {"detail": detail, "field": field}


def _location(loc: Any) -> str | None:
    """pydantic's location of an error, as the field a user wrote: ("body", "spec", "cv") → "cv"."""
    parts = [str(p) for p in (loc or ()) if p not in ("body", "query", "path", "form", "file", "spec", "payload")]
    return ".".join(parts) or None


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` in the one shape; an unexpected exception is still a 500 (logged by Django),
    so a fault shows up in tests and logs instead of passing for bad input."""

    def respond(request: HttpRequest, status: int, detail: str, field: str | None = None) -> HttpResponse:
        return api.create_response(request, error_body(detail, field), status=status)

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = respond(request, exc.status, exc.detail, exc.field)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(SpecError)
    def _spec_error(request: HttpRequest, exc: SpecError) -> HttpResponse:
        return respond(request, 400, exc.message, exc.field)

    @api.exception_handler(ValidationError)
    def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        field = _location(first.get("loc"))
        message = str(first.get("msg") or "invalid request")
        return respond(request, 400, f"{field}: {message}" if field else message, field)

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = respond(
            request, 401, "a valid API token is needed: send 'Authorization: Bearer <token>' (make one on the "
            "API tokens page or with `manage.py createtoken USERNAME`)", "Authorization",
        )  # fmt: skip
        response["WWW-Authenticate"] = 'Bearer realm="fanout"'
        return response

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return respond(request, exc.status_code, str(exc))

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, str(exc) or "not found (or not yours)")

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return respond(request, 413, f"the request body is too large: {exc}", "body")

    @api.exception_handler(TooManyFieldsSent)
    def _too_many_fields(request: HttpRequest, exc: TooManyFieldsSent) -> HttpResponse:
        return respond(request, 400, f"too many form fields: {exc}", "body")

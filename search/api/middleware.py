"""Errors under /api/ that django-ninja does not answer itself (a method an endpoint does not take, a path no
endpoint has, a request Django refuses before any view) are still the API's JSON shape (docs/api.md)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from search.api.errors import error_body

PREFIX = "/api/"
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiJsonErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        detail = str(response.reason_phrase or "error")
        if response.status_code == 405:
            detail = f"method {request.method} is not allowed here; allowed: {response.get('Allow', '')}"
        elif response.status_code == 404:
            detail = f"no API endpoint at {request.path}; see /api/v1/openapi.json"
        body = json.dumps(error_body(detail))
        out = HttpResponse(body, status=response.status_code, content_type="application/json")
        for name in KEPT_HEADERS:
            if name in response:
                out[name] = response[name]
        return out

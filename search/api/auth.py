"""Who an API request is: `Authorization: Bearer <token>` (services.tokens), rate-limited per token, and the
upload size guard put in place before django-ninja parses a multipart body.

The check runs before the request's parameters are read (django-ninja authenticates first), so a request
over the rate limit or over the upload limit is refused without one byte of its body being parsed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import HttpBearer

from search.api.errors import ApiError
from search.services.tokens import token_lookup, token_throttle
from search.uploads import UploadLimit, declared_over_limit, guard_upload

GUARD = "_fanout_upload_guard"


class BearerToken(HttpBearer):
    """The user of a valid, unrevoked token of an active user; None (a 401) for anything else."""

    def __call__(self, request: HttpRequest) -> User | None:
        found = token_lookup(header=request.headers.get("Authorization"))
        if found is None:
            return None
        if wait := token_throttle(token=found.token):
            raise ApiError(429, f"too many requests with this token; retry in {wait} s", None, retry_after=wait)
        request.user = found.user
        if (request.content_type or "").startswith("multipart/"):
            if refusal := declared_over_limit(request):
                raise ApiError(413, refusal, "file")
            setattr(request, GUARD, guard_upload(request))
        return found.user

    def authenticate(self, request: HttpRequest, token: str) -> Any:  # not used: __call__ reads the header
        raise NotImplementedError


def upload_guard(request: HttpRequest) -> UploadLimit | None:
    guard: UploadLimit | None = getattr(request, GUARD, None)
    return guard

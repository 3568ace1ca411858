"""The API tokens page (under the account menu): a user's tokens, a new one shown once, revoke."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from search.models import ApiToken
from search.services import tokens as tokens_service


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):  # login_required lets only a logged-in user this far
        raise PermissionDenied
    return request.user


def _page(request: HttpRequest, **extra: Any) -> HttpResponse:
    context = {
        "tokens": ApiToken.objects.filter(user=_user(request)),
        "name_max": ApiToken.NAME_MAX_LENGTH,
        "name": "",
        **extra,
    }
    return render(request, "accounts/tokens.html", context)


@never_cache  # Cache-Control: no-store: the new token is in this response and must not outlive it
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The list and the create form. A created token is in the POST's response only: a reload or a later
    visit shows its prefix, never the token."""
    if request.method != "POST":
        return _page(request)
    name = str(request.POST.get("name", ""))
    try:
        token, plaintext = tokens_service.token_create(user=_user(request), name=name)
    except ValueError as exc:
        return _page(request, name=name, name_error=str(exc))
    return _page(request, created=token, plaintext=plaintext)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=_user(request))
    if tokens_service.token_revoke(token=token):
        messages.success(request, f"Revoked token {token}: requests with it are refused from now on.")
    else:
        messages.info(request, f"Token {token} was revoked already.")
    return redirect("token-list")

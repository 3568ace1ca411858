"""Log in, with failed attempts throttled per username and per client address (FANOUT_LOGIN_ATTEMPTS within
FANOUT_LOGIN_WINDOW_SECONDS), on both the site's login page and the admin's.

The counts live in Django's cache (the file cache here, Redis when scaled out), so every web process
shares them. Each POST takes one attempt before the password is checked (an atomic `incr`, so parallel
guesses cannot all slip in under the limit) and a successful login hands it back; the window is two
fixed buckets, the current one and the one before, so no span of one window holds more than the limit.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.forms.utils import ErrorList
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.debug import sensitive_post_parameters

from search.counters import cache_count, cache_uncount

View = Callable[..., HttpResponseBase]
PREFIX = "fanout-login"


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind the TLS proxy Fanout is told it sits behind
    (DJANGO_SECURE_PROXY_SSL_HEADER) the address that proxy appended last to X-Forwarded-For."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) and forwarded.strip():
        return str(forwarded).split(",")[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


def _keys(request: HttpRequest) -> dict[str, str]:
    """One counter per username (case-folded) and one per address; hashed, so any input makes a valid key."""
    username = str(request.POST.get("username", "")).strip().casefold()
    who = {"user": username, "address": client_address(request)}
    return {kind: f"{PREFIX}:{kind}:{hashlib.sha256(value.encode()).hexdigest()}" for kind, value in who.items()}


def _take(key: str, bucket: int, window: int) -> int:
    """Count one attempt in this bucket; the attempts of this bucket and the one before, this one included."""
    return cache_count(f"{key}:{bucket}", window) + int(cache.get(f"{key}:{bucket - 1}", 0))


def _give_back(key: str, bucket: int) -> None:
    cache_uncount(f"{key}:{bucket}")


class RefusedLoginForm(AuthenticationForm):
    """An empty login form that shows why the last attempt was refused where the login page shows errors."""

    def __init__(self, request: HttpRequest, refusal: str) -> None:
        super().__init__(request)
        self.refusal = refusal

    def non_field_errors(self) -> ErrorList:
        return self.error_class([self.refusal], error_class="nonfield")


def _refused(request: HttpRequest, window: int) -> HttpResponse:
    minutes = max(1, math.ceil(2 * window / 60))
    refusal = (
        f"Too many failed logins for this username or from this address (at most {settings.FANOUT_LOGIN_ATTEMPTS} "
        f"in {window} s, FANOUT_LOGIN_ATTEMPTS). Try again in {minutes} minute{'s' if minutes > 1 else ''}."
    )
    form = RefusedLoginForm(request, refusal)
    response = render(request, "registration/login.html", {"form": form, "next": ""}, status=429)
    response["Retry-After"] = str(2 * window)
    return response


def throttle_logins(view: View) -> View:
    """Wrap a login view: a POST over the limit is answered 429 before the password is checked; a failed
    one keeps its attempt; a successful one (the redirect) gives it back and clears its username's count."""

    @wraps(view)
    @sensitive_post_parameters("password")  # as LoginView does: never in an error report, even from here
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        window = max(1, int(settings.FANOUT_LOGIN_WINDOW_SECONDS))
        bucket = int(time.time() // window)
        keys = _keys(request)
        taken = {kind: _take(key, bucket, window) for kind, key in keys.items()}
        if max(taken.values()) > int(settings.FANOUT_LOGIN_ATTEMPTS):
            return _refused(request, window)
        response = view(request, *args, **kwargs)
        if 300 <= response.status_code < 400:  # both login views redirect only after a valid login
            cache.delete_many([f"{keys['user']}:{b}" for b in (bucket, bucket - 1)])
            _give_back(keys["address"], bucket)
        return response

    return wrapped


login = throttle_logins(auth_views.LoginView.as_view())
admin_login = throttle_logins(admin.site.login)

"""Logging in: failed attempts are throttled per username and per client address, on the site and the admin."""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db
LIMIT = 3
_caches = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    """A private in-memory cache per test (the file cache is shared with other runs), and a small limit."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"login-{next(_caches)}"}
    }
    settings.FANOUT_LOGIN_ATTEMPTS = LIMIT
    settings.FANOUT_LOGIN_WINDOW_SECONDS = 300


def attempt(
    username: str, password: str, address: str = "10.0.0.1", url: str = "login", client: Client | None = None
) -> Response:
    client = client or Client()
    return client.post(reverse(url), {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(response: Response) -> bool:
    return "_auth_user_id" in response.wsgi_request.session


def test_failed_logins_past_the_limit_are_answered_429_even_with_the_right_password(owner: User) -> None:
    for _ in range(LIMIT):
        response = attempt("owner", "wrong password")
        assert response.status_code == 200 and "enter a correct username and password" in response.content.decode()
    for password in ("wrong password", PASSWORD):
        response = attempt("owner", password)
        assert response.status_code == 429 and not logged_in(response)
        body = response.content.decode()
        assert "Too many failed logins for this username or from this address" in body
        assert "Try again in 10 minutes" in body and response["Retry-After"] == "600"
        assert 'id="id_username"' in body  # the login form again, with the message on top


def test_a_successful_login_under_the_limit_is_not_blocked(owner: User) -> None:
    for _ in range(LIMIT - 1):
        assert attempt("owner", "wrong password").status_code == 200
    response = attempt("owner", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("search-list") and logged_in(response)
    # the success cleared the username's count: a full allowance of failures again from elsewhere
    for _ in range(LIMIT):
        assert attempt("owner", "wrong password", address="10.0.0.2").status_code == 200


def test_successful_logins_do_not_fill_the_address_count(owner: User) -> None:
    for _ in range(3 * LIMIT):
        assert attempt("owner", PASSWORD).status_code == 302


def test_the_limit_holds_per_address_across_usernames(owner: User) -> None:
    for name in ("alice", "bob", "carol"):
        assert attempt(name, "guess").status_code == 200
    assert attempt("owner", PASSWORD).status_code == 429
    response = attempt("owner", PASSWORD, address="10.0.0.9")
    assert response.status_code == 302 and logged_in(response)


def test_the_limit_holds_per_username_across_addresses(owner: User) -> None:
    for i in range(LIMIT):
        assert attempt("owner", "guess", address=f"10.0.1.{i}").status_code == 200
    assert attempt("owner", PASSWORD, address="10.0.1.99").status_code == 429
    assert attempt("OWNER", PASSWORD, address="10.0.1.98").status_code == 429  # the same name, case-folded
    other = User.objects.create_user("other", password=PASSWORD)
    assert attempt(other.username, PASSWORD, address="10.0.1.97").status_code == 302


def test_failures_age_out_after_the_window(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    for _ in range(LIMIT):
        attempt("owner", "wrong password")
    assert attempt("owner", PASSWORD).status_code == 429
    now += 2 * 300
    assert attempt("owner", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(owner: User) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    for _ in range(LIMIT):
        assert attempt("root", "wrong password", url="admin:login").status_code == 200
    response = attempt("root", PASSWORD, url="admin:login")
    assert response.status_code == 429 and not logged_in(response)
    assert "Too many failed logins" in response.content.decode()
    response = attempt("root", PASSWORD, url="admin:login", address="10.0.0.8")
    assert response.status_code == 429  # the username's count is shared by both login pages


def test_behind_a_proxy_the_forwarded_address_counts(owner: User, settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.1")
    for name in ("alice", "bob", "carol"):
        assert attempt(name, "guess", client=client).status_code == 200
    assert attempt("owner", PASSWORD, client=client).status_code == 429
    other = Client(HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.2")  # same proxy, another client
    assert attempt("owner", PASSWORD, client=other).status_code == 302

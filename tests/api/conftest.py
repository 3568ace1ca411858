"""Fixtures for the REST API: tokens, a client that sends one, and one search run to its model for a module.

The module's search is committed once (`committed_model_search`, ~2 s) and shared; each test's own writes
(tokens, uploads, cancels) are rolled back with the test."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from search.models import ApiToken, Search
from search.services.tokens import token_create
from tests.services.test_predictions import committed_model_search

_caches = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    """A private in-memory cache per test: the rate limit's counters start at zero."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"api-{next(_caches)}"}
    }


def bearer(plaintext: str | None) -> Client:
    """A test client that sends `Authorization: Bearer <plaintext>` (none at all for None)."""
    return Client() if plaintext is None else Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def content(response: Any) -> bytes:
    """A response's bytes, streamed (a file) or not."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def as_json(response: Any) -> Any:
    assert response["Content-Type"].startswith("application/json"), (response.status_code, response["Content-Type"])
    return json.loads(content(response))


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The API's one error shape, with `status` and (when given) the field at fault; returns the body."""
    body = as_json(response)
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"detail", "field"} and isinstance(body["detail"], str) and body["detail"], body
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.fixture
def owner_token(owner: User) -> tuple[ApiToken, str]:
    return token_create(user=owner, name="owner's")


@pytest.fixture
def other_token(other: User) -> tuple[ApiToken, str]:
    return token_create(user=other, name="other's")


@pytest.fixture
def api(owner_token: tuple[ApiToken, str]) -> Client:
    """The owner's API client."""
    return bearer(owner_token[1])


@pytest.fixture
def api_other(other_token: tuple[ApiToken, str]) -> Client:
    """Another user's API client."""
    return bearer(other_token[1])


@pytest.fixture
def api_for() -> Any:
    """`api_for(user)`: a client with a new token of `user`."""
    return lambda user: bearer(token_create(user=user)[1])


@pytest.fixture(scope="module")
def finished(django_db_setup: None, django_db_blocker: Any) -> Iterator[Search]:
    """A search of StandardScaler + LogisticRegression on iris (2 candidates, 3 folds), run to its model and
    committed for the module; its owner is `finished.owner` ("api-owner")."""
    with committed_model_search(django_db_blocker, owner_name="api-owner") as search:
        yield search


def owner_of(search: Search) -> User:
    assert search.owner is not None
    return search.owner


@pytest.fixture
def api_owner(finished: Search) -> Client:
    """The client of a new token of the module search's owner."""
    return bearer(token_create(user=owner_of(finished))[1])

"""schemathesis against /api/v1/openapi.json, in process (the WSGI app on the test database), with a valid
token and real rows behind it: every endpoint, with generated valid and invalid requests, answers without a
server error, and every error is the API's JSON shape (docs/api.md, Errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from project.wsgi import application
from search.services.tokens import token_create

LOCALHOST = {"SERVER_NAME": "localhost"}


# Read through the real WSGI app at collection (the schema needs no token and no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, headers={"Host": "localhost"})


@pytest.fixture
def in_process(db: None) -> Iterator[None]:
    """As Django's test client does: the app must not close the test's database connection at the end of each
    request (every request runs inside the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(in_process: None, make_search: Any) -> dict[str, str]:
    """A user with a token, a search (ids 1.. exist, so generated ids sometimes hit a real row)."""
    user = User.objects.create_user("fuzz")
    make_search({"estimator": "LogisticRegression", "param_grid": {"C": [1.0]}, "dataset": {"name": "iris"},
                 "cv": 2, "refit": False}, owner=user)  # fmt: skip
    return {"Authorization": f"Bearer {token_create(user=user)[1]}"}


def errors_are_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answers `{"detail": str, "field": str | null}`."""
    if 400 <= response.status_code < 500:
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
        assert str(content_type[0] if isinstance(content_type, list) else content_type).startswith(
            "application/json"
        ), (case.method, case.formatted_path, response.status_code, response.text[:500])
        body = json.loads(response.content)
        assert isinstance(body.get("detail"), str), body
        assert "field" in body, body
    return None


@schema.parametrize()
@hypothesis.settings(
    max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck), derandomize=True
)
def test_no_server_error_on_any_endpoint(case: Any, bearer: dict[str, str], settings: Any) -> None:
    settings.FANOUT_API_RATE = 10**9
    settings.ALLOWED_HOSTS = ["*"]
    case.headers = {**(case.headers or {}), **bearer}
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:2000])
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance])
    errors_are_json(None, response, case)

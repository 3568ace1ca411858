"""Who may call the API: every endpoint in /api/v1/openapi.json refuses a request without a valid token of an
active user (401, and nothing of the owner's in the answer), answers another user's token on the owner's rows as
if they did not exist (404), and counts each token's requests against the rate limit."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from search.api import api as ninja_api
from search.models import ApiToken, Dataset, Prediction, Search, Status
from search.services.datasets import dataset_upload
from search.services.predictions import prediction_create
from search.services.tokens import token_create, token_revoke
from tests.api.conftest import as_json, assert_error, bearer, content, owner_of
from tests.services.test_predictions import iris_csv

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMA = ninja_api.get_openapi_schema(path_prefix=PREFIX)  # the same document /openapi.json serves (checked below)
OPERATIONS = sorted((method, path) for path, ops in SCHEMA["paths"].items() for method in ops if method in METHODS)
OWNED = ("{search_id}", "{dataset_id}", "{prediction_id}")  # path parameters that name a row of a user


def owned_operations() -> list[Any]:
    """The operations whose path names a user's row."""
    return [pytest.param(method, path) for method, path in OPERATIONS if any(o in path for o in OWNED)]


SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [1.0]}, "dataset": "iris", "cv": 3}
POINTS = b"a,b,label\n" + b"".join(f"{i},{i % 3},{i % 2}\n".encode() for i in range(12))


@dataclass(frozen=True)
class Rows:
    """The owner's rows the paths are filled with, and strings of theirs no other caller may see."""

    search: Search
    dataset: Dataset
    prediction: Prediction
    secrets: tuple[str, ...]


@pytest.fixture
def rows(finished: Search) -> Rows:
    Search.objects.filter(pk=finished.pk).update(name="owner-secret-search")
    dataset, _ = dataset_upload(
        owner=owner_of(finished), name="owner-secret-data.csv", content=POINTS, target="label", filename="points.csv"
    )
    upload = SimpleUploadedFile("owner-secret-input.csv", iris_csv(), content_type="text/csv")
    prediction = prediction_create(search=finished, upload=upload)
    assert finished.best_params
    secrets = ("owner-secret-search", "owner-secret-data.csv", "owner-secret-input.csv", "logisticregression__C")
    return Rows(finished, dataset, prediction, (*secrets, json.dumps(finished.best_params)))


def url(path: str, rows: Rows) -> str:
    filled = {
        "{search_id}": rows.search.pk, "{dataset_id}": rows.dataset.pk, "{prediction_id}": rows.prediction.pk,
        "{fmt}": "skops", "{name}": "SVC",
    }  # fmt: skip
    for name, value in filled.items():
        path = path.replace(name, str(value))
    assert "{" not in path, path
    return path


def send(client: Client, method: str, path: str, rows: Rows) -> Any:
    """The request an honest caller would send, so a missing check would let it succeed."""
    target = url(path, rows)
    if method == "post" and path == f"{PREFIX}/searches":
        return client.post(target, SPEC, content_type="application/json")
    if method == "post" and path == f"{PREFIX}/datasets":
        return client.post(target, {"file": SimpleUploadedFile("p.csv", POINTS, "text/csv"), "target": "label"})
    if method == "post" and path.endswith("/predictions"):
        return client.post(target, {"file": SimpleUploadedFile("new.csv", iris_csv(), "text/csv")})
    return getattr(client, method)(target)


def counts() -> tuple[int, ...]:
    return Search.objects.count(), Dataset.objects.count(), Prediction.objects.count()


def assert_nothing_of(response: Any, rows: Rows) -> None:
    body = content(response).decode(errors="replace")
    for secret in rows.secrets:
        assert secret not in body, (secret, body)


def assert_unchanged(rows: Rows, before: tuple[int, ...]) -> None:
    assert counts() == before
    rows.search.refresh_from_db()
    assert rows.search.status == Status.DONE and rows.search.name == "owner-secret-search"
    assert Dataset.objects.filter(pk=rows.dataset.pk).exists()


# --- the schema itself ------------------------------------------------------------------------------


def test_the_schema_needs_no_token_and_is_the_one_these_tests_walk() -> None:
    response = Client().get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    served = as_json(response)
    assert served["paths"] == json.loads(json.dumps(SCHEMA["paths"]))
    assert len(OPERATIONS) >= 17


def documented() -> set[tuple[str, str]]:
    """Every `METHOD /path` of docs/api.md, with its placeholders as `{}` and `model.skops`/`.joblib` as one."""
    found = set()
    for method, written in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", DOCS.read_text()):
        path = re.sub(r"\{\w+\}", "{}", written.removeprefix(PREFIX))
        if path not in ("/openapi.json", "/docs"):
            found.add((method.lower(), re.sub(r"model\.(skops|joblib)$", "model.{}", path)))
    return found


def test_the_schema_lists_every_endpoint_of_the_docs_and_no_other() -> None:
    ours = {(m, re.sub(r"\{\w+\}", "{}", p.removeprefix(PREFIX))) for m, p in OPERATIONS}
    assert documented() == ours


def test_every_operation_asks_for_the_bearer_token() -> None:
    assert SCHEMA["components"]["securitySchemes"]["BearerToken"] == {"type": "http", "scheme": "bearer"}
    for method, path in OPERATIONS:
        assert SCHEMA["paths"][path][method].get("security") == [{"BearerToken": []}], (method, path)


# --- no valid token: 401 ----------------------------------------------------------------------------


def no_header(user: User) -> Client:
    return Client()


def header(value: str) -> Any:
    return lambda user: Client(HTTP_AUTHORIZATION=value)


def wrong_token(user: User) -> Client:
    return bearer("fanout_" + "x" * 43)


def revoked_token(user: User) -> Client:
    token, plaintext = token_create(user=user)
    assert token_revoke(token=token)
    return bearer(plaintext)


def inactive_users_token(user: User) -> Client:
    plaintext = token_create(user=user)[1]
    User.objects.filter(pk=user.pk).update(is_active=False)
    return bearer(plaintext)


REFUSED = {
    "anonymous": no_header, "basic": header("Basic x"), "bearer-alone": header("Bearer"),
    "bearer-two-words": header("Bearer a b"), "wrong-token": wrong_token, "revoked-token": revoked_token,
    "inactive-user": inactive_users_token,
}  # fmt: skip


@pytest.mark.parametrize("caller", sorted(REFUSED))
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_without_a_valid_token_every_endpoint_answers_401(method: str, path: str, caller: str, rows: Rows) -> None:
    client = REFUSED[caller](owner_of(rows.search))
    before = counts()
    response = send(client, method, path, rows)
    body = assert_error(response, 401, "Authorization")
    assert "Bearer" in body["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_of(response, rows)
    assert "LogisticRegression" not in content(response).decode()  # not even the estimator list
    assert_unchanged(rows, before)


# --- another user's token: 404 on the owner's rows, and their own lists ----------------------------------


@pytest.mark.parametrize(("method", "path"), owned_operations())
def test_another_users_token_finds_none_of_the_owners_rows(
    method: str, path: str, rows: Rows, api_other: Client
) -> None:
    before = counts()
    response = send(api_other, method, path, rows)
    assert_error(response, 404)
    assert_nothing_of(response, rows)
    assert_unchanged(rows, before)
    rows.prediction.refresh_from_db()
    assert rows.prediction.status == Status.QUEUED


@pytest.mark.parametrize("path", ["/searches", "/searches?status=done", "/datasets"])
def test_another_users_lists_hold_none_of_the_owners_rows(path: str, rows: Rows, api_other: Client) -> None:
    response = api_other.get(PREFIX + path)
    assert response.status_code == 200
    assert as_json(response) == {"count": 0, "items": []}
    owners = bearer(token_create(user=owner_of(rows.search))[1]).get(PREFIX + path)
    assert owners.status_code == 200 and as_json(owners)["count"] >= 1  # the owner's own token does see them


def test_the_owners_token_reaches_the_rows(rows: Rows, api_owner: Client) -> None:
    paths = ("/searches/{search_id}", "/datasets/{dataset_id}", "/searches/{search_id}/predictions/{prediction_id}")
    for path in paths:
        response = api_owner.get(url(PREFIX + path, rows))
        assert response.status_code == 200, (path, response.content)
    assert as_json(api_owner.get(url(f"{PREFIX}/searches/{{search_id}}", rows)))["name"] == "owner-secret-search"


# --- rate limit and last use ---------------------------------------------------------------------------


def test_over_the_rate_a_token_gets_429_with_retry_after_and_others_do_not(settings: Any, owner: User) -> None:
    settings.FANOUT_API_RATE = 3
    settings.FANOUT_API_RATE_WINDOW_SECONDS = 60
    client = bearer(token_create(user=owner)[1])
    assert [client.get(f"{PREFIX}/estimators").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(f"{PREFIX}/searches")
    body = assert_error(refused, 429)
    assert 1 <= int(refused["Retry-After"]) <= 120 and "retry" in body["detail"]
    assert bearer(token_create(user=owner)[1]).get(f"{PREFIX}/estimators").status_code == 200  # per token
    assert client.get(f"{PREFIX}/openapi.json").status_code == 200  # the schema is not rate-limited


def test_a_request_marks_its_token_used(owner_token: tuple[ApiToken, str], api: Client) -> None:
    token, _plaintext = owner_token
    assert token.last_used_at is None
    assert api.get(f"{PREFIX}/searches").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None

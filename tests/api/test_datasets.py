"""Data sets through the API: upload a CSV file or an .npz, find the same bytes again, list, see, delete (not
while a search uses one), and every refusal as the API's JSON error naming the field at fault."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from search.models import Dataset
from tests.api.conftest import as_json, assert_error
from tests.conftest import create_search

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets"
POINTS = b"a,b,c,label\n" + b"".join(f"{i},{i * 0.5},{10 - i},{'yes' if i % 2 else 'no'}\n".encode() for i in range(12))


def upload(client: Client, content: bytes | None = POINTS, filename: str = "points.csv", **fields: str) -> Any:
    """POST a multipart upload; a .csv file gets `target=label` unless `fields` say otherwise."""
    data: dict[str, Any] = {"target": "label", **fields} if filename.endswith(".csv") else dict(fields)
    if content is not None:
        data["file"] = SimpleUploadedFile(filename, content, content_type="application/octet-stream")
    return client.post(URL, data)


def npz(**arrays: Any) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_a_csv_upload_is_stored_for_its_owner(api: Client, owner: User) -> None:
    response = upload(api, name="my points")
    body = as_json(response)
    assert response.status_code == 201, body
    row = Dataset.objects.get(pk=body["id"])
    assert row.owner == owner and row.name == "my points" and row.kind == "csv" and row.content == POINTS
    assert body["n_samples"] == 12 and body["n_features"] == 3 and body["kind"] == "csv"
    assert body["target"] == "label" and body["has_groups"] is False and body["created"] is True
    assert body["name"] == "my points"


def test_the_same_bytes_again_are_the_same_data_set(api: Client, owner: User) -> None:
    first = as_json(upload(api))
    again = upload(api, filename="renamed.csv")
    assert again.status_code == 200
    assert as_json(again) == {**first, "created": False}
    assert Dataset.objects.filter(owner=owner).count() == 1
    numeric = b"a,b,y\n" + b"".join(f"{i},{i % 3},{i % 2}\n".encode() for i in range(9))
    assert upload(api, numeric, target="y").status_code == 201
    by_a = upload(api, numeric, target="a")  # the same bytes with another target: another data set
    assert by_a.status_code == 201 and as_json(by_a)["target"] == "a"
    assert Dataset.objects.filter(owner=owner).count() == 3


def test_list_and_detail_show_the_users_data_sets_newest_first(api: Client, owner: User) -> None:
    first = as_json(upload(api))
    second = as_json(upload(api, POINTS.replace(b"label", b"y"), target="y"))
    listed = as_json(api.get(URL))
    assert listed["count"] == 2 and [d["id"] for d in listed["items"]] == [second["id"], first["id"]]
    assert all(d["created"] is None for d in listed["items"])
    page = as_json(api.get(URL, {"limit": 1, "offset": 1}))
    assert page["count"] == 2 and [d["id"] for d in page["items"]] == [first["id"]]
    detail = api.get(f"{URL}/{first['id']}")
    assert detail.status_code == 200 and as_json(detail) == {**first, "created": None}


@pytest.mark.parametrize(
    ("query", "field"), [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"),
                         ({"limit": "x"}, "limit")],
)  # fmt: skip
def test_a_bad_page_is_400_naming_the_parameter(api: Client, query: dict[str, Any], field: str) -> None:
    assert_error(api.get(URL, query), 400, field)


def test_delete_removes_the_row(api: Client) -> None:
    created = as_json(upload(api))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    assert not Dataset.objects.filter(pk=created["id"]).exists()
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert_error(api.get(f"{URL}/{created['id']}"), 404)


def test_a_data_set_a_search_uses_is_not_deleted(api: Client, owner: User) -> None:
    dataset = Dataset.objects.get(pk=as_json(upload(api))["id"])
    search = create_search(
        {"estimator": "LogisticRegression", "dataset": {"csv": dataset.local_path(), "target": "label"}, "cv": 3},
        owner=owner,
    )
    assert search.dataset_id == dataset.pk
    body = assert_error(api.delete(f"{URL}/{dataset.pk}"), 400, "dataset_id")
    assert f"id {search.pk}" in body["detail"]
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- refusals ---------------------------------------------------------------------------------------------


def test_an_upload_without_a_file_is_400_naming_file(api: Client) -> None:
    assert_error(upload(api, None), 400, "file")
    assert_error(api.post(URL, {}), 400, "file")
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (b"", "points.csv", "header row"),
        (b"a,b,label\n1,x,0\n2,3,1\n", "points.csv", "not numeric"),
        (b"a,b,label\n1,2\n", "points.csv", "fields"),
        (b"\xff\xfe\x00garbage", "points.csv", "UTF-8"),
        (POINTS, "points.txt", "neither a .csv nor an .npz"),
        (b"not a zip", "arrays.npz", "not an .npz archive"),
    ],
)
def test_a_file_that_does_not_parse_is_400_naming_file(api: Client, content: bytes, name: str, words: str) -> None:
    body = assert_error(upload(api, content, filename=name), 400, "file")
    assert words in body["detail"]
    assert not Dataset.objects.exists()


def test_an_unknown_target_column_is_400_naming_target_and_the_columns(api: Client) -> None:
    body = assert_error(upload(api, target="nope"), 400, "target")
    assert "'nope'" in body["detail"] and "a, b, c, label" in body["detail"]
    assert not Dataset.objects.exists()


def test_a_csv_without_a_target_is_400_naming_target(api: Client) -> None:
    body = assert_error(upload(api, target=""), 400, "target")
    assert "target" in body["detail"]
    assert not Dataset.objects.exists()


def test_an_upload_over_the_limit_is_413_and_nothing_is_stored(api: Client, settings: Any) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    big = POINTS + b"".join(f"{i},1,2,no\n".encode() for i in range(200_000))
    assert len(big) > 2 * 1024 * 1024
    body = assert_error(upload(api, big), 413, "file")
    assert "1 MB" in body["detail"] and "FANOUT_MAX_UPLOAD_MB" in body["detail"]
    streamed = big[: 1024 * 1024 + 500 * 1024]  # within the declared allowance: stopped as the file streams in
    assert_error(upload(api, streamed.rsplit(b"\n", 1)[0] + b"\n"), 413, "file")
    assert not Dataset.objects.exists()


# --- .npz --------------------------------------------------------------------------------------------------
def test_an_npz_with_groups_is_stored(api: Client, owner: User) -> None:
    rng = np.random.default_rng(0)
    X, y, groups = rng.normal(size=(30, 4)), np.array(["a", "b", "c"] * 10), np.repeat(np.arange(6), 5)
    content = npz(X=X, y=y, groups=groups)
    response = upload(api, content, filename="arrays.npz")
    body = as_json(response)
    assert response.status_code == 201, body
    assert body["kind"] == "npz" and body["has_groups"] is True and body["target"] is None
    assert body["n_samples"] == 30 and body["n_features"] == 4 and body["name"] == "arrays.npz"
    row = Dataset.objects.get(pk=body["id"])
    assert row.owner == owner and row.content == content
    again = upload(api, content, filename="arrays.npz")
    assert again.status_code == 200 and as_json(again)["created"] is False
    without = as_json(upload(api, npz(X=X, y=y), filename="plain.npz"))
    assert without["has_groups"] is False


def test_an_npz_with_an_object_array_is_refused(api: Client) -> None:
    content = npz(X=np.array([[1.0, 2.0]] * 4), y=np.array([{"a": 1}, None, "x", 2], dtype=object))
    body = assert_error(upload(api, content, filename="pickled.npz"), 400, "file")
    assert "object" in body["detail"]
    assert not Dataset.objects.exists()


def test_an_npz_with_a_target_is_400_naming_target(api: Client) -> None:
    content = npz(X=np.ones((4, 2)), y=np.arange(4))
    body = assert_error(upload(api, content, filename="arrays.npz", target="y"), 400, "target")
    assert "target" in body["detail"]
    assert not Dataset.objects.exists()


# --- another user ------------------------------------------------------------------------------------------
def test_another_users_data_set_is_404_and_stays(api: Client, api_other: Client) -> None:
    created = as_json(upload(api))
    for response in (api_other.get(f"{URL}/{created['id']}"), api_other.delete(f"{URL}/{created['id']}")):
        body = assert_error(response, 404)
        assert "points" not in body["detail"]
    assert Dataset.objects.filter(pk=created["id"]).exists()
    assert as_json(api_other.get(URL)) == {"count": 0, "items": []}
    mine = upload(api_other)  # the same bytes are a new data set of theirs
    assert mine.status_code == 201 and as_json(mine)["id"] != created["id"]

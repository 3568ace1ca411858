"""Searches through the API: created from the spec `runsearch` takes (every check made, a 400 naming the key),
listed, seen with their live progress, cancelled, rerun, and exported: `cv_results` equal the page's export and
scikit-learn's own GridSearchCV."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from search.models import Dataset, Search, Status, WorkUnit
from search.selectors.export import search_export
from search.services.datasets import dataset_upload
from tests.api.conftest import as_json, assert_error
from tests.conftest import create_search, login_client
from tests.services.test_predictions import GRID
from tests.system.test_oracle import assert_same_cv_results

pytestmark = pytest.mark.django_db

URL = "/api/v1/searches"
SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0]}, "dataset": "iris", "cv": 3}
POINTS = b"a,b,label\n" + b"".join(f"{i},{(i * 7) % 5},{i % 2}\n".encode() for i in range(24))


def create(client: Client, spec: Any) -> Any:
    return client.post(URL, spec, content_type="application/json")


def test_a_spec_makes_a_search_of_the_tokens_user_with_its_units(api: Client, owner: User) -> None:
    response = create(api, SPEC)
    body = as_json(response)
    assert response.status_code == 201, body
    search = Search.objects.get(pk=body["id"])
    assert search.owner == owner and search.status == Status.QUEUED and search.estimator == "LogisticRegression"
    assert (search.n_candidates, search.n_splits, search.n_fits) == (2, 3, 6)
    assert WorkUnit.objects.filter(search=search).count() >= 1
    assert body["status"] == "queued" and body["n_fits"] == 6 and body["n_fits_done"] == 0
    assert body["url"] == f"http://testserver/searches/{search.pk}/"
    assert body["progress"]["total"] == 6 and body["progress"]["finished"] is False


def test_a_spec_names_an_uploaded_data_set_by_id(api: Client, owner: User) -> None:
    dataset, _ = dataset_upload(owner=owner, name="points.csv", content=POINTS, target="label")
    response = create(api, {**SPEC, "dataset": {"id": dataset.pk}})
    body = as_json(response)
    assert response.status_code == 201, body
    assert body["dataset_id"] == dataset.pk and Search.objects.get(pk=body["id"]).dataset_id == dataset.pk
    assert Dataset.objects.count() == 1  # that row, not a copy


def test_an_npz_uploaded_through_the_api_is_searched_by_id_with_its_groups(api: Client) -> None:
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    np.savez(out, X=rng.normal(size=(30, 3)), y=np.arange(30) % 2, groups=np.repeat(np.arange(6), 5))
    uploaded = api.post("/api/v1/datasets", {"file": SimpleUploadedFile("arrays.npz", out.getvalue())})
    assert uploaded.status_code == 201, uploaded.content
    dataset_id = as_json(uploaded)["id"]
    spec = {**SPEC, "dataset": {"id": dataset_id}, "cv": {"n_splits": 3, "groups": True}}
    response = create(api, spec)
    body = as_json(response)
    assert response.status_code == 201, body
    assert body["dataset_id"] == dataset_id and body["n_splits"] == 3 and body["n_fits"] == 6


def test_another_users_data_set_id_is_400_naming_dataset_id(api: Client, other: User) -> None:
    theirs, _ = dataset_upload(owner=other, name="theirs.csv", content=POINTS, target="label")
    for dataset_id in (theirs.pk, theirs.pk + 1000):  # another user's and a missing one read the same
        body = assert_error(create(api, {**SPEC, "dataset": {"id": dataset_id}}), 400, "dataset.id")
        assert "theirs" not in body["detail"]
    assert not Search.objects.exists()


def test_a_spec_cannot_use_a_csv_file_on_the_server(api: Client, other: User, tmp_path: Path) -> None:
    theirs, _ = dataset_upload(owner=other, name="theirs.csv", content=POINTS, target="label")
    server_file = tmp_path / "server.csv"
    server_file.write_bytes(POINTS)
    for path in (theirs.local_path(), str(server_file)):
        assert_error(create(api, {**SPEC, "dataset": {"csv": path, "target": "label"}}), 400, "dataset.csv")
    assert not Search.objects.exists() and Dataset.objects.count() == 1


def test_a_spec_cannot_read_a_server_files_first_line(api: Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server-secret-line,with-a-comma\nmore\n")
    missing = tmp_path / "missing.csv"
    answers = [create(api, {**SPEC, "dataset": {"csv": str(p), "target": "x"}}) for p in (secret, missing)]
    bodies = [assert_error(answer, 400, "dataset.csv") for answer in answers]
    assert "server-secret-line" not in bodies[0]["detail"]
    assert bodies[0]["detail"] == bodies[1]["detail"]  # nor whether a path exists


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cv": {"n_splits": 1}}, "cv.n_splits"),
        ({"cv": 1}, "cv.n_splits"),
        ({"estimator": "NoSuchEstimator"}, "estimator"),
        ({"estimator": "os.system"}, "estimator"),
        ({"param_grid": {"C": "not a list"}}, "param_grid"),
        ({"param_grid": {"no_such_param": [1, 2]}}, "param_grid.no_such_param"),
        ({"param_grid": {"C": [-1.0]}}, "param_grid.C"),
        ({"scoring": "no_such_metric"}, "scoring"),
        ({"dataset": "no_such_dataset"}, "dataset.name"),
        ({"dataset": {"id": 0}}, "dataset.id"),
        ({"no_such_key": 1}, "no_such_key"),
    ],
)
def test_a_bad_spec_is_400_naming_the_key(api: Client, change: dict[str, Any], field: str) -> None:
    assert_error(create(api, {**SPEC, **change}), 400, field)
    assert not Search.objects.exists()


@pytest.mark.parametrize("raw", ["[1, 2]", '"iris"', "null", "1", "{", "", "{'estimator': 'SVC'}", "\xff"])
def test_a_body_that_is_not_a_json_object_is_400_json(api: Client, raw: str) -> None:
    assert_error(api.post(URL, raw, content_type="application/json"), 400)
    assert not Search.objects.exists()


def test_a_spec_sent_as_a_form_is_400_json(api: Client) -> None:
    assert_error(api.post(URL, {"estimator": "SVC"}), 400)
    assert not Search.objects.exists()


# --- list, detail, cancel, rerun -------------------------------------------------------------------------


def test_the_list_filters_by_status_and_pages(api: Client, owner: User, other: User) -> None:
    first, second, third = (create_search(SPEC, owner=owner) for _ in range(3))
    Search.objects.filter(pk=second.pk).update(status=Status.DONE)
    create_search(SPEC, owner=other)
    listed = as_json(api.get(URL))
    assert listed["count"] == 3 and [s["id"] for s in listed["items"]] == [third.pk, second.pk, first.pk]
    assert all("progress" in s for s in listed["items"])
    assert [s["id"] for s in as_json(api.get(URL, {"status": "done"}))["items"]] == [second.pk]
    assert [s["id"] for s in as_json(api.get(URL, {"status": "queued"}))["items"]] == [third.pk, first.pk]
    page = as_json(api.get(URL, {"limit": 1, "offset": 1}))
    assert page["count"] == 3 and [s["id"] for s in page["items"]] == [second.pk]
    assert as_json(api.get(URL, {"offset": 10})) == {"count": 3, "items": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"),
        ({"offset": -1}, "offset"), ({"offset": "1.5"}, "offset"), ({"offset": 2**63}, "offset"),
    ],
)  # fmt: skip
def test_bad_list_parameters_are_400_naming_the_parameter(api: Client, query: dict[str, Any], field: str) -> None:
    assert_error(api.get(URL, query), 400, field)


def test_the_detail_has_the_pages_progress_and_url(api: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    body = as_json(api.get(f"{URL}/{search.pk}"))
    assert body["id"] == search.pk and body["status"] == "queued" and body["task"] == "classification"
    assert body["url"] == "http://testserver" + reverse("search-detail", args=[search.pk])
    progress = body["progress"]
    for key in ("status", "done", "total", "failed", "percent", "elapsed", "eta", "finished", "refitting", "busy",
                "hosts"):  # fmt: skip
        assert key in progress, key
    assert (progress["done"], progress["total"], progress["finished"]) == (0, 6, False)


@pytest.mark.parametrize("search_id", [0, -1, 2**63, 999_999])
def test_a_missing_search_is_404(api: Client, search_id: int) -> None:
    for path in ("", "/cv_results", "/model"):
        assert_error(api.get(f"{URL}/{search_id}{path}"), 404)
    assert_error(api.post(f"{URL}/{search_id}/cancel"), 404)


def test_cancel_stops_a_queued_search(api: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    response = api.post(f"{URL}/{search.pk}/cancel")
    assert response.status_code == 200 and as_json(response)["status"] == "cancelled"
    search.refresh_from_db()
    assert search.status == Status.CANCELLED and search.finished_at is not None
    assert set(search.units.values_list("status", flat=True)) == {Status.CANCELLED}
    again = api.post(f"{URL}/{search.pk}/cancel")
    assert again.status_code == 200 and as_json(again)["status"] == "cancelled"


def test_rerun_makes_a_new_search_with_the_same_spec(api: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    response = api.post(f"{URL}/{search.pk}/rerun")
    body = as_json(response)
    assert response.status_code == 201, body
    new = Search.objects.get(pk=body["id"])
    assert new.pk != search.pk and new.rerun_of_id == search.pk and new.owner == owner
    assert new.spec == search.spec and new.dataset_id == search.dataset_id and new.status == Status.QUEUED


def test_another_users_search_is_404_and_unchanged(api_other: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    for response in (
        api_other.get(f"{URL}/{search.pk}"), api_other.post(f"{URL}/{search.pk}/cancel"),
        api_other.post(f"{URL}/{search.pk}/rerun"), api_other.get(f"{URL}/{search.pk}/cv_results"),
    ):  # fmt: skip
        assert_error(response, 404)
    search.refresh_from_db()
    assert search.status == Status.QUEUED and Search.objects.count() == 1


# --- cv_results ----------------------------------------------------------------------------------------------


def test_cv_results_are_the_pages_export_and_scikit_learns(finished: Search, api_owner: Client) -> None:
    response = api_owner.get(f"{URL}/{finished.pk}/cv_results")
    assert response.status_code == 200
    body = as_json(response)
    assert body == json.loads(json.dumps(search_export(search=finished)))
    page = login_client(finished.owner).get(reverse("search-export", args=[finished.pk, "json"]))
    assert page.status_code == 200 and json.loads(page.content) == body
    iris = load_iris()
    reference = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()), GRID, cv=3, refit=False)
    assert_same_cv_results(body["cv_results"], reference.fit(iris.data, iris.target).cv_results_)
    assert body["search"]["best_params"] == finished.best_params


def test_cv_results_of_an_unfinished_search_are_400(api: Client, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    body = assert_error(api.get(f"{URL}/{search.pk}/cv_results"), 400, "search_id")
    assert "0/6 fits" in body["detail"]

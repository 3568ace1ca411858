"""The data set pages as the owner, another user and an anonymous visitor use them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from django.utils.crypto import get_random_string

from search.engine.datasets import sha256
from search.models import Dataset, Search
from search.services.datasets import DatasetInUse, dataset_create_from_upload, dataset_delete
from search.services.searches import plan_search, search_create
from tests.conftest import login_client

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db

GOOD_CSV = b"a,b,c,label\n" + b"".join(
    f"{i},{i * 0.5},{10 - i},{'yes' if i % 2 else 'no'}\n".encode() for i in range(12)
)


@pytest.fixture
def client_owner(owner: User) -> Client:
    return login_client(owner)


@pytest.fixture
def client_other(other: User) -> Client:
    return login_client(other)


def upload(client: Client, content: bytes = GOOD_CSV, **kwargs: Any) -> Response:
    filename = kwargs.pop("filename", "points.csv")
    content_type = kwargs.pop("content_type", "text/csv")
    data = {"target": "label", "name": "", **kwargs}
    if content is not None:
        data["file"] = SimpleUploadedFile(filename, content, content_type=content_type)
    return client.post(reverse("dataset-upload"), data)


def messages_of(response: Response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def make_dataset(owner: User, content: bytes = GOOD_CSV, target: str = "label") -> Dataset:
    return dataset_create_from_upload(owner=owner, name="points.csv", content=content, target=target)


def make_search(owner: User, tmp_path: Path, content: bytes = GOOD_CSV) -> Search:
    path = tmp_path / "points.csv"
    path.write_bytes(content)
    spec = {"estimator": "LogisticRegression", "dataset": {"csv": str(path), "target": "label"}, "cv": 3}
    return search_create(plan=plan_search(spec), owner=owner, enqueue=False)


# --- anonymous visitors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "needs_pk"),
    [
        ("get", "dataset-list", False),
        ("get", "dataset-upload", False),
        ("post", "dataset-upload", False),
        ("get", "dataset-detail", True),
        ("post", "dataset-delete", True),
        ("get", "dataset-delete", True),
    ],
)
def test_anonymous_is_sent_to_login(owner: User, method: str, name: str, needs_pk: bool) -> None:
    dataset = make_dataset(owner)
    url = reverse(name, args=[dataset.pk] if needs_pk else [])
    response = getattr(Client(), method)(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    assert reverse("login") == "/accounts/login/"
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- another user ---------------------------------------------------------------------------------


def test_another_users_dataset_is_404(owner: User, client_other: Client) -> None:
    dataset = make_dataset(owner)
    assert client_other.get(reverse("dataset-detail", args=[dataset.pk])).status_code == 404
    assert client_other.post(reverse("dataset-delete", args=[dataset.pk])).status_code == 404
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_list_shows_only_own_datasets(owner: User, other: User, client_owner: Client) -> None:
    mine = dataset_create_from_upload(owner=owner, name="mine.csv", content=GOOD_CSV, target="label")
    dataset_create_from_upload(owner=other, name="theirs.csv", content=GOOD_CSV, target="label")
    response = client_owner.get(reverse("dataset-list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "mine.csv" in body and "theirs.csv" not in body
    assert reverse("dataset-detail", args=[mine.pk]) in body
    assert reverse("dataset-upload") in body and "Upload a CSV" in body
    assert [d.pk for d in response.context["page"].object_list] == [mine.pk]


def test_list_newest_first_paginated_with_search_counts(owner: User, client_owner: Client, tmp_path: Path) -> None:
    for i in range(26):
        make_dataset(owner, target="label", content=GOOD_CSV + f"0,0,{i},no\n".encode())
    used = make_search(owner, tmp_path).dataset  # the newest row, used by one search
    first = client_owner.get(reverse("dataset-list"))
    page = first.context["page"]
    assert page.paginator.count == 27 and len(page.object_list) == 25
    assert page.object_list[0].pk == used.pk and page.object_list[0].n_searches == 1
    assert page.object_list[1].n_searches == 0
    second = client_owner.get(reverse("dataset-list") + "?page=2")
    assert len(second.context["page"].object_list) == 2


def test_list_includes_builtin_datasets_from_searches(owner: User, client_owner: Client) -> None:
    spec = {"estimator": "LogisticRegression", "dataset": "iris", "cv": 3}
    search_create(plan=plan_search(spec), owner=owner, enqueue=False)
    body = client_owner.get(reverse("dataset-list")).content.decode()
    assert "iris" in body and "150 × 4" in body


# --- upload ---------------------------------------------------------------------------------------


def test_upload_form_renders(client_owner: Client) -> None:
    response = client_owner.get(reverse("dataset-upload"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body and 'name="target"' in body and "dataset_upload.js" in body


def test_upload_good_csv(owner: User, client_owner: Client) -> None:
    response = upload(client_owner)
    dataset = Dataset.objects.get(owner=owner)
    assert response.status_code == 302
    assert response["Location"] == reverse("dataset-detail", args=[dataset.pk])
    assert (dataset.name, dataset.kind, dataset.n_samples, dataset.n_features) == ("points.csv", "csv", 12, 3)
    assert dataset.source == {"target": "label", "filename": "points.csv"}
    assert bytes(dataset.content or b"") == GOOD_CSV
    assert dataset.key == sha256(GOOD_CSV + b"\0label")
    assert any("Uploaded" in m for m in messages_of(response))


def test_upload_with_a_name(owner: User, client_owner: Client) -> None:
    upload(client_owner, name="My points")
    assert Dataset.objects.get(owner=owner).name == "My points"


def test_reupload_gives_the_existing_row(owner: User, client_owner: Client) -> None:
    first = upload(client_owner)
    second = upload(client_owner, name="again")
    assert Dataset.objects.filter(owner=owner).count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]
    assert any("already uploaded" in m for m in messages_of(second))


def test_same_file_other_target_is_another_dataset(owner: User, client_owner: Client) -> None:
    numeric = b"a,b,label\n1,2,0\n3,4,1\n"
    upload(client_owner, numeric)
    upload(client_owner, numeric, target="a")
    assert sorted(d.source["target"] for d in Dataset.objects.filter(owner=owner)) == ["a", "label"]


def test_upload_then_search_on_the_same_file_reuses_the_row(owner: User, client_owner: Client, tmp_path: Path) -> None:
    upload(client_owner)
    search = make_search(owner, tmp_path)
    assert Dataset.objects.filter(owner=owner).count() == 1
    assert search.dataset == Dataset.objects.get(owner=owner)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"content": b""}, "file", "header row and at least one data row"),
        ({"content": b"a,b,label\n"}, "file", "header row and at least one data row"),
        ({"target": "nope"}, "target", "target column 'nope' not in the header; columns: a, b, c, label"),
        ({"content": b"a,b,label\n1,x,0\n2,3,1\n"}, "file", "column 'b' is not numeric (line 2: 'x')"),
        ({"content": "a,b,label\n1,2,é\n".encode("latin-1")}, "file", "not UTF-8"),
        ({"filename": "points.txt"}, "file", "'points.txt' does not end in .csv or .npz; expected a .csv file"),
        ({"content_type": "image/png"}, "file", "sent as 'image/png', not text; expected a .csv file"),
        ({"content": None}, "file", "no file came in"),
        ({"target": ""}, "target", "no target column came in"),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-target",
        "non-numeric",
        "not-utf8",
        "extension",
        "content-type",
        "no-file",
        "no-target",
    ],
)
def test_bad_upload_is_refused_on_its_field(
    owner: User, client_owner: Client, kwargs: dict[str, Any], field: str, message: str
) -> None:
    response = upload(client_owner, **kwargs)
    assert response.status_code == 200
    assert not Dataset.objects.exists()
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    body = response.content.decode()
    assert f'id="field-{field}"' in body and 'class="error"' in body


def test_too_large_upload_is_refused(client_owner: Client, settings: Any) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 0
    response = upload(client_owner)
    assert response.status_code == 200
    assert not Dataset.objects.exists()
    (error,) = response.context["form"].errors["file"]
    assert f"({len(GOOD_CSV)} bytes)" in error and "the limit is 0 MB" in error


class CountingInput(io.BytesIO):
    """A request body (`wsgi.input`) that counts the bytes the server side read from it."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1, /) -> bytes:
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def post_counted(client: Client, content: bytes, token: str | None = None) -> tuple[Response, CountingInput]:
    """POST a real multipart upload through a counting body; the response and how much of it was read.
    With `token`, the client holds that CSRF cookie; the form carries it unless token is "" (a forgery)."""
    fields: dict[str, Any] = {"target": "label", "name": "", "file": SimpleUploadedFile("big.csv", content)}
    if token is not None:
        secret = get_random_string(32)
        client.cookies[django_settings.CSRF_COOKIE_NAME] = secret
        fields = {"csrfmiddlewaretoken": secret if token == "valid" else token, **fields}
    body = encode_multipart(BOUNDARY, fields)
    stream = CountingInput(body)
    extra: dict[str, Any] = {"wsgi.input": stream}
    response = client.generic("POST", reverse("dataset-upload"), body, content_type=MULTIPART_CONTENT, **extra)
    return response, stream


def csv_of_size(n_bytes: int) -> bytes:
    """A valid CSV of about `n_bytes` (never more)."""
    rows = [b"a,b,c,label\n"]
    size, i = len(rows[0]), 0
    while True:
        row = f"{i},{i % 7},{i % 11},{'yes' if i % 2 else 'no'}\n".encode()
        if size + len(row) > n_bytes:
            return b"".join(rows)
        rows.append(row)
        size, i = size + len(row), i + 1


@pytest.mark.parametrize("enforce_csrf", [False, True], ids=["test-client", "csrf-enforced"])
def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(
    owner: User, settings: Any, enforce_csrf: bool
) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    client = login_client(owner, enforce_csrf_checks=enforce_csrf)  # the CSRF check reads the whole body
    response, stream = post_counted(client, csv_of_size(3 * 1024 * 1024), token="valid" if enforce_csrf else None)
    assert response.status_code == 413
    assert stream.bytes_read == 0  # not one byte of the 3 MB body was read
    assert not Dataset.objects.exists()
    (error,) = response.context["form"].errors["file"]
    assert "This upload is 3.0 MB" in error and "the limit is 1 MB (FANOUT_MAX_UPLOAD_MB)" in error
    assert 'id="field-file"' in response.content.decode() and error in response.content.decode()


def test_a_file_over_the_limit_is_stopped_as_soon_as_it_passes(
    owner: User, client_owner: Client, settings: Any
) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    content = csv_of_size(1900 * 1024)  # the request is under limit + form allowance: only its file is too large
    response, stream = post_counted(client_owner, content)
    assert response.status_code == 200  # a form error on the file field, as for any file the form refuses
    assert not Dataset.objects.exists()
    body_size = len(stream.getvalue())
    assert stream.bytes_read < 1024 * 1024 + 128 * 1024 < body_size  # stopped within a chunk of the limit
    (error,) = response.context["form"].errors["file"]
    assert "'big.csv' is over the limit: reading stopped at 1.1 MB" in error
    assert "the limit is 1 MB (FANOUT_MAX_UPLOAD_MB). Nothing was stored." in error


@pytest.mark.parametrize("enforce_csrf", [False, True], ids=["test-client", "csrf-enforced"])
def test_a_file_just_under_the_limit_is_read_and_stored(owner: User, settings: Any, enforce_csrf: bool) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    content = csv_of_size(1024 * 1024)
    client = login_client(owner, enforce_csrf_checks=enforce_csrf)
    response, stream = post_counted(client, content, token="valid" if enforce_csrf else None)
    assert response.status_code == 302
    assert stream.bytes_read == len(stream.getvalue())
    assert bytes(Dataset.objects.get(owner=owner).content or b"") == content


def test_an_upload_without_its_csrf_token_is_still_refused(owner: User) -> None:
    client = login_client(owner, enforce_csrf_checks=True)
    response, _ = post_counted(client, GOOD_CSV, token="")
    assert response.status_code == 403
    assert not Dataset.objects.exists()


def test_upload_get_and_post_only(client_owner: Client) -> None:
    assert client_owner.put(reverse("dataset-upload")).status_code == 405


# --- detail ---------------------------------------------------------------------------------------


def test_detail_shows_facts_preview_and_class_balance(owner: User, client_owner: Client) -> None:
    content = b"a,b,label\n" + b"".join(f"{i},{i + 100},{'yes' if i < 15 else 'no'}\n".encode() for i in range(30))
    dataset = make_dataset(owner, content=content)
    response = client_owner.get(reverse("dataset-detail", args=[dataset.pk]))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.columns == ["a", "b", "label"] and preview.target_index == 2
    assert len(preview.rows) == 20 and preview.rows[0] == ["0", "100", "yes"] and preview.rows[19][0] == "19"
    assert [(c.label, c.count, c.percent) for c in preview.classes] == [("no", 15, 50.0), ("yes", 15, 50.0)]
    body = response.content.decode()
    assert '<td class="num">119</td>' in body and '<td class="num">120</td>' not in body  # rows 0-19 only
    assert dataset.key[:12] in body and "Class balance" in body and "No search uses this data set." in body
    assert "disabled" not in body.split("Delete this data set")[0].rsplit("<button", 1)[1]


def test_detail_regression_target_has_no_class_balance(owner: User, client_owner: Client) -> None:
    content = b"a,price\n" + b"".join(f"{i},{i * 1.5}\n".encode() for i in range(5))
    dataset = make_dataset(owner, content=content, target="price")
    response = client_owner.get(reverse("dataset-detail", args=[dataset.pk]))
    assert response.context["preview"].categorical is False
    assert "Class balance" not in response.content.decode()


def test_detail_of_a_builtin_dataset(owner: User, client_owner: Client) -> None:
    spec = {"estimator": "LogisticRegression", "dataset": "iris", "cv": 3}
    search = search_create(plan=plan_search(spec), owner=owner, enqueue=False)
    response = client_owner.get(reverse("dataset-detail", args=[search.dataset_id]))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert len(preview.rows) == 20 and len(preview.columns) == 5 and preview.rows[0][:2] == ["5.1", "3.5"]
    assert [(c.label, c.count) for c in preview.classes] == [("0", 50), ("1", 50), ("2", 50)]
    assert reverse("search-detail", args=[search.pk]) in response.content.decode()


def test_detail_disables_delete_when_searches_use_it(owner: User, client_owner: Client, tmp_path: Path) -> None:
    search = make_search(owner, tmp_path)
    body = client_owner.get(reverse("dataset-detail", args=[search.dataset_id])).content.decode()
    assert reverse("search-detail", args=[search.pk]) in body
    assert "disabled" in body.split("Delete this data set")[0].rsplit("<button", 1)[1]
    assert "1 search uses it" in body


# --- delete ---------------------------------------------------------------------------------------


def test_delete_unused_dataset(owner: User, client_owner: Client) -> None:
    dataset = make_dataset(owner)
    response = client_owner.post(reverse("dataset-delete", args=[dataset.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("dataset-list")
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert any("Deleted" in m for m in messages_of(response))


def test_delete_refused_while_a_search_uses_it(owner: User, client_owner: Client, tmp_path: Path) -> None:
    search = make_search(owner, tmp_path)
    url = reverse("dataset-delete", args=[search.dataset_id])
    response = client_owner.post(url, follow=True)
    assert response.redirect_chain == [(reverse("dataset-detail", args=[search.dataset_id]), 302)]
    assert Dataset.objects.filter(pk=search.dataset_id).exists()
    body = response.content.decode()
    assert f"used by 1 search (id {search.pk})" in body and "msg-error" in body


def test_delete_service_names_every_search(owner: User, tmp_path: Path) -> None:
    first = make_search(owner, tmp_path)
    second = make_search(owner, tmp_path)
    assert first.dataset_id == second.dataset_id
    with pytest.raises(DatasetInUse, match=f"2 searches \\(ids {first.pk}, {second.pk}\\)"):
        dataset_delete(dataset=first.dataset)


def test_delete_needs_post(owner: User, client_owner: Client) -> None:
    dataset = make_dataset(owner)
    assert client_owner.get(reverse("dataset-delete", args=[dataset.pk])).status_code == 405
    assert Dataset.objects.filter(pk=dataset.pk).exists()


# --- NumPy .npz uploads -----------------------------------------------------------------------------


def npz_bytes(**arrays: Any) -> bytes:
    import numpy as np

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


NPZ = npz_bytes(X=[[i, i * 0.5] for i in range(24)], y=["cat", "dog", "eel"] * 8, groups=[i // 4 for i in range(24)])


def test_upload_an_npz_without_a_target(owner: User, client_owner: Client) -> None:
    response = upload(client_owner, NPZ, filename="arrays.npz", content_type="application/octet-stream", target="")
    dataset = Dataset.objects.get(owner=owner)
    assert response.status_code == 302 and response["Location"] == reverse("dataset-detail", args=[dataset.pk])
    assert (dataset.kind, dataset.n_samples, dataset.n_features, dataset.name) == ("npz", 24, 2, "arrays.npz")
    assert dataset.source == {"filename": "arrays.npz", "groups": True} and dataset.key == sha256(NPZ)
    assert any("24 rows × 2 features, with groups" in m for m in messages_of(response))
    again = upload(client_owner, NPZ, filename="same.npz", content_type="application/zip", target="")
    assert again["Location"] == response["Location"] and Dataset.objects.count() == 1
    assert any("already uploaded as 'arrays.npz'" in m for m in messages_of(again))


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"target": "y"}, "target", "target is for CSV files; an .npz names its target array y"),
        ({"content": b"a,b\n1,2\n"}, "file", "arrays.npz: the file is not an .npz archive"),
        ({"content": npz_bytes(X=[[1.0]], y=[None])}, "file", "holds Python objects (dtype object)"),
        ({"content": npz_bytes(X=[[1.0], [2.0]], y=[0])}, "file", "y has 1 values and X has 2 rows"),
        ({"content": npz_bytes(X=[[1.0]], y=[0], w=[1])}, "file", "unknown array 'w'"),
        ({"content_type": "text/plain"}, "file", "'arrays.npz' was sent as 'text/plain'; expected an .npz archive"),
    ],
    ids=["target-given", "not-a-zip", "object-array", "lengths", "unknown-array", "content-type"],
)
def test_bad_npz_upload_is_refused_on_its_field(
    client_owner: Client, kwargs: dict[str, Any], field: str, message: str
) -> None:
    args: dict[str, Any] = {"filename": "arrays.npz", "content_type": "application/octet-stream", "target": ""}
    response = upload(client_owner, **{"content": NPZ, **args, **kwargs})
    assert response.status_code == 200 and not Dataset.objects.exists()
    errors = response.context["form"].errors
    assert list(errors) == [field] and message in errors[field][0], errors


def test_detail_of_an_npz_shows_rows_classes_and_groups(owner: User, client_owner: Client) -> None:
    upload(client_owner, NPZ, filename="arrays.npz", content_type="application/octet-stream", target="")
    dataset = Dataset.objects.get(owner=owner)
    response = client_owner.get(reverse("dataset-detail", args=[dataset.pk]))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.columns == ["x0", "x1", "y"] and preview.target_index == 2 and not preview.error
    assert len(preview.rows) == 20 and preview.rows[1] == ["1", "0.5", "dog"]
    assert [(c.label, c.count) for c in preview.classes] == [("cat", 8), ("dog", 8), ("eel", 8)]
    assert preview.n_groups == 6
    body = response.content.decode()
    assert "NumPy .npz arrays" in body and "Class balance" in body and "<code>groups</code>" in body
    listing = client_owner.get(reverse("dataset-list")).content.decode()
    assert "(with groups)" in listing


def test_the_new_search_form_runs_on_an_uploaded_npz(owner: User, client_owner: Client) -> None:
    upload(client_owner, NPZ, filename="arrays.npz", content_type="application/octet-stream", target="")
    dataset = Dataset.objects.get(owner=owner)
    form = {
        "name": "on npz", "estimator": "KNeighborsClassifier", "preprocessing": "", "params": "",
        "param_grid": '{"n_neighbors": [1, 3]}', "dataset_kind": "upload", "uploaded": str(dataset.pk),
        "builtin": "iris", "generator": "make_classification", "generator_options": "", "cv_splits": "3",
        "n_jobs": "-1",
    }  # fmt: skip
    assert client_owner.post(reverse("search-estimate"), form).status_code == 200
    response = client_owner.post(reverse("search-new"), form)
    search = Search.objects.get()
    assert response.status_code == 302 and search.dataset == dataset and search.spec["dataset"] == {"id": dataset.pk}
    assert Dataset.objects.count() == 1
    again = client_owner.get(reverse("search-new") + f"?from={search.pk}")
    assert again.context["form"].initial["uploaded"] == dataset.pk

"""The predict page and the download, as the search's owner, another user and an anonymous visitor use them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from search.models import Prediction, Search, Status
from search.services.predictions import prediction_run
from tests.conftest import create_search, login_client
from tests.services.test_predictions import (
    FEATURES,
    IRIS,
    SPEC,
    committed_model_search,
    iris_csv,
    read_predictions,
    storage_files,
    stored_model,
)
from tests.views.test_datasets import CountingInput

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def search(django_db_setup: None, django_db_blocker: Any) -> Iterator[Search]:
    with committed_model_search(django_db_blocker, owner_name="predictor") as found:
        yield found


@pytest.fixture
def mine(search: Search) -> Client:
    """The search owner's logged-in client."""
    return login_client(search.owner)


def page(search: Search) -> str:
    return reverse("search-predict", args=[search.pk])


def post_file(client: Client, search: Search, content: bytes, name: str = "new.csv") -> Response:
    return client.post(page(search), {"file": SimpleUploadedFile(name, content, content_type="text/csv")})


def post_counted(client: Client, search: Search, content: bytes) -> tuple[Response, CountingInput]:
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("big.csv", content)})
    stream = CountingInput(body)
    extra: dict[str, Any] = {"wsgi.input": stream}
    response = client.generic("POST", page(search), body, content_type=MULTIPART_CONTENT, **extra)
    return response, stream


def big_csv(n_bytes: int) -> bytes:
    """An iris-shaped CSV of about `n_bytes`."""
    header = (",".join(f'"{f}"' for f in FEATURES) + "\n").encode()
    row = b"5.1,3.5,1.4,0.2\n"
    return header + row * ((n_bytes - len(header)) // len(row))


def test_the_owner_sees_the_feature_columns_and_the_form(mine: Client, search: Search) -> None:
    response = mine.get(page(search))
    assert response.status_code == 200
    html = response.content.decode()
    for name in FEATURES:
        assert f'<code class="feature">{name}</code>' in html
    assert 'id="predict-form"' in html and 'id="predict-file"' in html and 'name="file"' in html
    assert ">Predict</button>" in html and "the target <code>target</code>" in html
    assert 'http-equiv="refresh"' not in html  # nothing is queued or running


def test_another_user_gets_404_for_the_page_and_the_download(search: Search, other: User) -> None:
    prediction = Prediction.objects.create(search=search, input_name="x.csv", input_file="x", status=Status.DONE)
    client = login_client(other)
    assert client.get(page(search)).status_code == 404
    assert post_file(client, search, iris_csv()).status_code == 404
    url = reverse("search-prediction-download", args=[search.pk, prediction.pk])
    assert client.get(url).status_code == 404
    assert not Prediction.objects.exclude(pk=prediction.pk).exists()


def test_anonymous_visitors_are_sent_to_log_in(search: Search) -> None:
    response = login_client(None).get(page(search))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_upload_then_run_then_download(mine: Client, search: Search) -> None:
    response = post_file(mine, search, iris_csv())
    assert response.status_code in (302, 303) and response["Location"] == page(search)
    prediction = Prediction.objects.get(search=search)
    assert prediction.status == Status.QUEUED and prediction.input_name == "new.csv"

    html = mine.get(page(search)).content.decode()
    assert '<span class="badge queued">queued</span>' in html and 'http-equiv="refresh"' in html
    url = reverse("search-prediction-download", args=[search.pk, prediction.pk])
    assert mine.get(url).status_code == 404  # not done yet

    assert prediction_run(prediction_id=prediction.pk) == "done"
    html = mine.get(page(search)).content.decode()
    assert '<span class="badge done">done</span>' in html and 'class="prediction-download"' in html
    assert f'href="{url}"' in html and 'http-equiv="refresh"' not in html

    download = mine.get(url)
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    assert (
        download["Content-Disposition"] == f'attachment; filename="search-{search.pk}-prediction-{prediction.pk}.csv"'
    )
    header, predicted, proba = read_predictions(download.getvalue().decode())
    model = stored_model(search)
    assert header == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert np.array_equal(predicted, model.predict(IRIS.data))
    assert np.array_equal(proba, model.predict_proba(IRIS.data))


def test_a_failed_prediction_shows_its_error(mine: Client, search: Search) -> None:
    post_file(mine, search, iris_csv() + b"abc,1,2,3,4\n")
    prediction = Prediction.objects.get(search=search)
    assert prediction_run(prediction_id=prediction.pk) == "failed"
    html = mine.get(page(search)).content.decode()
    assert '<span class="badge failed">failed</span>' in html and "is not numeric (line 152: &#x27;abc&#x27;)" in html
    url = reverse("search-prediction-download", args=[search.pk, prediction.pk])
    assert mine.get(url).status_code == 404


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty.csv: the file is empty"),
        (b"sepal length (cm),target\n1,0\n", "empty.csv: the file has no column &#x27;sepal width (cm)&#x27;"),
    ],
    ids=["empty", "missing-column"],
)
def test_a_file_the_model_cannot_read_is_refused_with_400(
    mine: Client, search: Search, content: bytes, message: str
) -> None:
    response = post_file(mine, search, content, name="empty.csv")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Prediction.objects.exists()


def test_no_file_is_refused_with_400(mine: Client, search: Search) -> None:
    response = mine.post(page(search), {})
    assert response.status_code == 400 and "no file came in" in response.content.decode()


def test_a_search_without_a_model_is_refused_with_its_reason(mine: Client, search: Search) -> None:
    bare = create_search({**SPEC, "refit": False}, owner=search.owner)
    assert "refit: false" in mine.get(page(bare)).content.decode()
    response = post_file(mine, bare, iris_csv())
    assert response.status_code == 400
    assert f"search {bare.pk} was run with refit: false" in response.content.decode()
    assert not Prediction.objects.exists()


def test_a_file_over_the_limit_is_stopped_and_nothing_stored(mine: Client, search: Search, settings: Any) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    files = storage_files(f"predictions/search-{search.pk}")
    response, stream = post_counted(mine, search, big_csv(1536 * 1024))
    assert response.status_code == 413
    assert stream.bytes_read < 1024 * 1024 + 128 * 1024 < len(stream.getvalue())  # stopped near the limit
    assert "the limit is 1 MB (FANOUT_MAX_UPLOAD_MB). Nothing was stored." in response.content.decode()
    assert not Prediction.objects.exists()
    assert storage_files(f"predictions/search-{search.pk}") == files


def test_an_upload_declared_over_the_limit_is_refused_before_its_body_is_read(
    mine: Client, search: Search, settings: Any
) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    response, stream = post_counted(mine, search, big_csv(3 * 1024 * 1024))
    assert response.status_code == 413 and stream.bytes_read == 0
    assert "This upload is 3.0 MB" in response.content.decode()
    assert not Prediction.objects.exists()

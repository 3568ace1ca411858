"""The model on the site: who may see and download it, what the detail page shows, what the admin shows,
and that it goes with its search."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.engine import artifacts
from search.models import FittedModel, Search, model_storage
from tests.conftest import create_search, login_client, run_inline

pytestmark = pytest.mark.django_db

SPEC = {
    "estimator": ["StandardScaler", "LogisticRegression"], "param_grid": {"logisticregression__C": [0.1, 1.0]},
    "dataset": "iris", "cv": 3, "scoring": ["accuracy", "f1_macro"], "refit": "accuracy",
    "holdout": {"test_size": 0.2, "random_state": 0, "stratify": True},
}  # fmt: skip


@pytest.fixture
def finished(owner: User) -> Search:
    search = run_inline(create_search(SPEC, owner=owner))
    assert search.status == "done" and search.model is not None
    return search


def streamed(response: Any) -> bytes:
    """A FileResponse's bytes."""
    return b"".join(response.streaming_content)


def body(response: Any) -> str:
    return response.content.decode() if hasattr(response, "content") else streamed(response).decode()


def test_the_detail_page_shows_the_model_and_the_held_out_scores(web: Client, finished: Search) -> None:
    page = body(web.get(reverse("search-detail", args=[finished.pk])))
    assert 'id="download-skops"' in page and reverse("search-model-download", args=[finished.pk, "skops"]) in page
    assert 'id="joblib-download"' in page and "loading it runs whatever code it holds" in page
    assert finished.holdout is not None
    scores = finished.holdout["scores"]
    cells = re.findall(r'class="num holdout-score">([^<]*)<', page)
    assert cells == [f"{scores['accuracy']:.4f}", f"{scores['f1_macro']:.4f}"]
    assert "30 rows" in page and "test_size 0.2" in page and "stratified" in page  # 30 of iris's 150 held out
    assert body(web.get(reverse("search-model", args=[finished.pk]))).count('id="download-skops"') == 1


def test_downloads_stream_the_stored_files(web: Client, finished: Search) -> None:
    fitted = FittedModel.objects.get(search=finished)
    response = web.get(reverse("search-model-download", args=[finished.pk, "skops"]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="search-{finished.pk}-model.skops"'
    content = streamed(response)
    assert len(content) == fitted.size and hashlib.sha256(content).hexdigest() == fitted.card["sha256"]
    model = artifacts.load(content)
    assert finished.best_params is not None
    assert model.get_params()["logisticregression__C"] == finished.best_params["logisticregression__C"]
    assert fitted.card is not None
    joblib_file = web.get(reverse("search-model-download", args=[finished.pk, "joblib"]))
    assert joblib_file.status_code == 200 and len(streamed(joblib_file)) == fitted.card["joblib_size"]
    card = web.get(reverse("search-model-download", args=[finished.pk, "json"]))
    assert card.status_code == 200 and card["Content-Type"] == "application/json"
    assert web.get(reverse("search-model-download", args=[finished.pk, "pickle"])).status_code == 404


def test_another_user_gets_404_everywhere(finished: Search, other: User) -> None:
    outsider = login_client(other)
    for url in (
        reverse("search-detail", args=[finished.pk]),
        reverse("search-model", args=[finished.pk]),
        *(reverse("search-model-download", args=[finished.pk, fmt]) for fmt in ("skops", "joblib", "json")),
    ):
        assert outsider.get(url).status_code == 404, url
    anonymous = login_client(None).get(reverse("search-model-download", args=[finished.pk, "skops"]))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_without_a_model_the_page_says_why(web: Client, owner: User) -> None:
    search = run_inline(create_search({**SPEC, "refit": False, "holdout": None}, owner=owner))
    page = body(web.get(reverse("search-detail", args=[search.pk])))
    assert "refit: false, so no model was fitted" in page and 'id="download-skops"' not in page
    assert web.get(reverse("search-model-download", args=[search.pk, "skops"])).status_code == 404


def test_the_admin_lists_models_with_size_card_and_downloads(finished: Search) -> None:
    staff = Client()
    staff.force_login(User.objects.create_superuser("admin", "admin@example.com", None))
    fitted = FittedModel.objects.get(search=finished)
    listing = body(staff.get(reverse("admin:search_fittedmodel_changelist")))
    assert "model of search" in listing and "KB" in listing
    change = body(staff.get(reverse("admin:search_fittedmodel_change", args=[fitted.pk])))
    assert fitted.card["sha256"] in change and "model.joblib (a pickle" in change
    download = staff.get(reverse("admin:search_fittedmodel_download", args=[fitted.pk, "skops"]))
    assert download.status_code == 200 and len(streamed(download)) == fitted.size
    plain = User.objects.create_user("staff-without-rights", password="x" * 20, is_staff=True)
    assert (
        login_client(plain).get(reverse("admin:search_fittedmodel_download", args=[fitted.pk, "skops"])).status_code
        == 403
    )


def test_the_model_files_go_with_their_search(finished: Search) -> None:
    fitted = FittedModel.objects.get(search=finished)
    names = [str(fitted.skops_file.name), str(fitted.joblib_file.name), str(fitted.card_file.name)]
    storage = model_storage()
    assert all(storage.exists(n) for n in names)
    finished.delete()
    assert not FittedModel.objects.exists() and not any(storage.exists(n) for n in names)

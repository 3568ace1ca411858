"""Search pages as the owner, another user and an anonymous visitor; database state after each action."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from search.models import Search, Status
from tests.conftest import create_search, queued_messages, run_inline

pytestmark = pytest.mark.django_db
SPEC = {
    "name": "svc-grid", "estimator": "SVC", "dataset": "iris", "cv": 3,
    "param_grid": {"C": [0.1, 1, 10], "kernel": ["linear", "rbf"]}, "return_train_score": True,
}  # fmt: skip
FORM = {
    "name": "from-the-form", "estimator": "SVC", "preprocessing": "", "params": "", "param_grid": '{"C": [1, 10]}',
    "dataset_kind": "builtin", "builtin": "wine", "generator": "make_classification", "generator_options": "",
    "cv_splits": "4", "n_jobs": "-1",
}  # fmt: skip


@pytest.fixture
def done(owner: User) -> Search:
    return run_inline(create_search(SPEC, owner=owner))


def urls(pk: int) -> list[str]:
    return [
        reverse("search-detail", args=[pk]), reverse("search-progress", args=[pk]),
        reverse("search-leaderboard", args=[pk]), reverse("search-chart", args=[pk, "param"]),
        reverse("search-chart", args=[pk, "heatmap"]), reverse("search-chart", args=[pk, "parallel"]),
        reverse("search-chart", args=[pk, "train-test"]), reverse("search-export", args=[pk, "csv"]),
        reverse("search-export", args=[pk, "json"]), reverse("search-new") + f"?from={pk}",
    ]  # fmt: skip


def test_owner_sees_every_page(client_for: Any, owner: User, done: Search) -> None:
    client = client_for(owner)
    for url in [reverse("search-list"), reverse("search-new"), *urls(done.pk)]:
        assert client.get(url).status_code == 200, url


def test_another_user_gets_404_everywhere(client_for: Any, done: Search) -> None:
    other = client_for(User.objects.create_user("other", password="a-long-test-password"))
    for url in urls(done.pk):
        assert other.get(url).status_code == 404, url
    assert other.post(reverse("search-cancel", args=[done.pk])).status_code == 404
    assert other.post(reverse("search-rerun", args=[done.pk])).status_code == 404
    assert "svc-grid" not in other.get(reverse("search-list")).content.decode()
    assert Search.objects.count() == 1


def test_anonymous_is_sent_to_login(client_for: Any, done: Search) -> None:
    anonymous = client_for(None)
    for url in [reverse("search-list"), reverse("search-new"), *urls(done.pk), reverse("api-estimator", args=["SVC"])]:
        response = anonymous.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert anonymous.post(reverse("search-cancel", args=[done.pk])).status_code == 302
    assert Search.objects.get().status == Status.DONE


def test_list_filters_sorts_and_paginates(client_for: Any, owner: User, done: Search) -> None:
    for i in range(30):
        create_search({**SPEC, "name": f"queued-{i:02d}"}, owner=owner)
    client = client_for(owner)
    body = client.get(reverse("search-list") + "?status=done").content.decode()
    assert "svc-grid" in body and "queued-" not in body
    first = client.get(reverse("search-list") + "?sort=name").content.decode()
    assert "queued-00" in first and "page 1 of 2" in first
    second = client.get(reverse("search-list") + "?sort=name&page=2").content.decode()
    assert "svc-grid" in second and "queued-00" not in second


def test_new_search_from_the_form(client_for: Any, owner: User) -> None:
    response = client_for(owner).post(reverse("search-new"), FORM)
    search = Search.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("search-detail", args=[search.pk])
    assert search.owner == owner and search.status == Status.QUEUED and search.n_fits == 8
    assert search.spec["cv"]["n_splits"] == 4 and search.dataset.name == "wine"


def test_pipeline_generator_and_two_metrics(client_for: Any, owner: User) -> None:
    data = {
        **FORM, "estimator": "StandardScaler>LogisticRegression", "param_grid": '{"logisticregression__C": [1, 2]}',
        "dataset_kind": "generator", "generator": "make_moons", "generator_options": '{"n_samples": 120}',
        "scoring": ["accuracy", "f1"], "refit": "f1", "cv_shuffle": "on", "cv_random_state": "3",
    }  # fmt: skip
    assert client_for(owner).post(reverse("search-new"), data).status_code == 302
    spec = Search.objects.get().spec
    assert spec["estimator"] == ["StandardScaler", "LogisticRegression"]
    assert spec["scoring"] == ["accuracy", "f1"] and spec["refit"] == "f1"
    assert spec["cv"] == {"n_splits": 4, "shuffle": True, "random_state": 3}
    assert spec["dataset"]["options"]["n_samples"] == 120


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"param_grid": '{"C": [-1]}'}, "param_grid", "must be a float in the range"),
        ({"param_grid": '{"C": [1'}, "param_grid", "invalid JSON"),
        ({"param_grid": '{"Cee": [1]}'}, "param_grid", "SVC has no parameter"),
        ({"params": '{"kernel": "cubic"}'}, "params", "must be a str among"),
        ({"cv_splits": "1"}, "cv_splits", "greater than or equal to 2"),
        ({"cv_splits": "80"}, "cv_splits", "stratified folds need at least 80 rows of every class"),
        ({"scoring": ["r2"]}, "scoring", "is a regression scorer"),
        ({"dataset_kind": "generator", "generator": "make_moons", "generator_options": '{"n_sample": 5}'},
         "generator_options", "unknown option"),
        ({"dataset_kind": "upload"}, "uploaded", "choose one of your uploaded CSV data sets"),
        ({"n_jobs": "0"}, "n_jobs", "non-zero"),
        ({"estimator": "NotAnEstimator"}, "estimator", "Select a valid choice"),
    ],
)  # fmt: skip
def test_bad_input_gets_an_error_next_to_its_field(
    client_for: Any, owner: User, changes: dict[str, Any], field: str, message: str
) -> None:
    response = client_for(owner).post(reverse("search-new"), {**FORM, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    body = response.content.decode()
    assert 'value="from-the-form"' in body  # what was typed is kept
    assert Search.objects.count() == 0 and queued_messages() == 0


def test_duplicate_and_edit_prefills_the_form(client_for: Any, owner: User, done: Search) -> None:
    form = client_for(owner).get(reverse("search-new") + f"?from={done.pk}").context["form"]
    assert form.initial["estimator"] == "SVC" and form.initial["builtin"] == "iris"
    assert json.loads(form.initial["param_grid"]) == SPEC["param_grid"]
    assert form.initial["cv_splits"] == 3 and form.initial["return_train_score"] is True


def test_progress_json(client_for: Any, owner: User, done: Search) -> None:
    data = client_for(owner).get(reverse("search-progress", args=[done.pk])).json()
    assert data["status"] == "done" and data["done"] == data["total"] == 18 and data["percent"] == 100
    assert data["finished"] is True and data["eta"] is None and data["cores_used"] == done.cores_used
    assert data["best_params"] == done.best_params and data["hosts"]


def test_leaderboard_ranks_sorts_and_shows_failures(client_for: Any, owner: User) -> None:
    grid = {"solver": ["lbfgs", "liblinear"]}
    spec = {"estimator": "LogisticRegression", "dataset": "iris", "cv": 3, "param_grid": grid}
    search = run_inline(create_search(spec, owner=owner))
    body = client_for(owner).get(reverse("search-leaderboard", args=[search.pk])).content.decode()
    assert body.index("solver=lbfgs") < body.index("solver=liblinear")  # rank 1 first
    assert "Fit failures" in body and "does not support multiclass" in body
    by_index = client_for(owner).get(reverse("search-leaderboard", args=[search.pk]) + "?sort=-index").content.decode()
    assert by_index.index("solver=liblinear") < by_index.index("solver=lbfgs")


def test_charts_are_plotly_figures_built_on_the_server(client_for: Any, owner: User, done: Search) -> None:
    client = client_for(owner)
    param = client.get(reverse("search-chart", args=[done.pk, "param"]) + "?param=C").json()
    assert param["data"] and param["data"][0]["x"] == [0.1, 1, 10]
    heat = client.get(reverse("search-chart", args=[done.pk, "heatmap"]) + "?x=C&y=kernel").json()
    assert heat["data"][0]["type"] == "heatmap" and len(heat["data"][0]["z"]) == 2
    assert client.get(reverse("search-chart", args=[done.pk, "parallel"])).json()["data"][0]["type"] == "parcoords"
    assert client.get(reverse("search-chart", args=[done.pk, "train-test"])).json()["data"]
    assert client.get(reverse("search-chart", args=[done.pk, "nope"])).status_code == 404
    assert client.get(reverse("search-chart", args=[done.pk, "param"]) + "?metric=nope").status_code == 404


def test_export_files_match_exportsearch(client_for: Any, owner: User, done: Search) -> None:
    from django.core.management import call_command

    response = client_for(owner).get(reverse("search-export", args=[done.pk, "csv"]))
    assert response["Content-Disposition"] == f'attachment; filename="search-{done.pk}.csv"'
    out = io.StringIO()
    call_command("exportsearch", done.pk, "--format", "csv", stdout=out)
    assert response.content.decode() == out.getvalue()
    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header[:3] == ["params", "param_C", "param_kernel"] and "mean_train_score" in header


def test_export_of_an_unfinished_search_is_a_400(client_for: Any, owner: User) -> None:
    search = create_search(SPEC, owner=owner)
    response = client_for(owner).get(reverse("search-export", args=[search.pk, "json"]))
    assert response.status_code == 400 and b"0/18 fits stored" in response.content


def test_cancel_and_rerun(client_for: Any, owner: User, done: Search) -> None:
    client = client_for(owner)
    queued = create_search(SPEC, owner=owner)
    response = client.post(reverse("search-cancel", args=[queued.pk]), follow=True)
    assert "cancelled" in response.content.decode()
    queued.refresh_from_db()
    assert queued.status == Status.CANCELLED
    assert set(queued.units.values_list("status", flat=True)) == {Status.CANCELLED}
    assert client.get(reverse("search-cancel", args=[queued.pk])).status_code == 405
    response = client.post(reverse("search-rerun", args=[done.pk]))
    new = Search.objects.get(rerun_of=done)
    assert response["Location"] == reverse("search-detail", args=[new.pk]) and new.owner == owner


def test_estimator_api(client_for: Any, owner: User) -> None:
    client = client_for(owner)
    svc = client.get(reverse("api-estimator", args=["SVC"])).json()
    assert svc["task"] == "classification" and {"name": "C", "default": 1.0} in svc["params"]
    assert "accuracy" in svc["scorers"] and "r2" not in svc["scorers"]
    pipe = client.get(reverse("api-estimator", args=["SVR"]) + "?pre=StandardScaler").json()
    assert pipe["steps"] == ["StandardScaler", "SVR"] and any(p["name"] == "svr__C" for p in pipe["params"])
    assert client.get(reverse("api-estimator", args=["Nope"])).status_code == 404
    moons = client.get(reverse("api-generator", args=["make_moons"])).json()
    assert moons["options"]["n_samples"] == 100


def test_pages_polls_charts_and_lists_never_load_the_csv_bytes(client_for: Any, owner: User, tmp_path: Any) -> None:
    """A CSV data set's bytes (up to FANOUT_MAX_UPLOAD_MB) are read by the runner's cache, never by the pages
    a user polls: no query of the list, the detail page, its progress poll, charts or exports selects them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path = tmp_path / "rows.csv"
    path.write_text("a,b,y\n" + "".join(f"{i % 7},{(i * 3) % 11},{i % 3}\n" for i in range(90)))
    spec = {"estimator": "SVC", "dataset": {"csv": str(path), "target": "y"}, "cv": 3,
            "param_grid": {"C": [0.1, 1], "kernel": ["linear", "rbf"]}}  # fmt: skip
    search = run_inline(create_search(spec, owner=owner))
    assert search.status == Status.DONE and search.dataset.content
    client = client_for(owner)
    pages = [reverse("search-list"), *urls(search.pk)[:-1]]  # the new-search form lists data sets: not a poll
    pages += [reverse("search-chart", args=[search.pk, kind]) for kind in ("timeline", "utilisation", "busy")]
    with CaptureQueriesContext(connection) as queries:
        for url in pages:
            assert client.get(url).status_code == 200, url
    assert len(queries) > len(pages)
    assert [q["sql"] for q in queries if '"search_dataset"."content"' in q["sql"]] == []

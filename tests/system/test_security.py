"""Who may do what: an anonymous visitor, another user, a non-staff user in the admin, a form posted without
its CSRF token, an oversized or disguised upload; nothing a user sends is imported by path or unpickled;
production settings pass `manage.py check --deploy` while `make run` keeps serving plain HTTP locally."""

from __future__ import annotations

import ast
import json
import pickle
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, reverse

from project.cluster import ROOT
from search import urls
from search.engine import registry
from search.models import Dataset, ScalingStudy, Search, Status
from search.services.datasets import dataset_upload
from tests.conftest import create_search, login_client, queued_messages

pytestmark = pytest.mark.django_db

SPEC = {"name": "mine", "estimator": "SVC", "param_grid": {"C": [1, 10]}, "dataset": "iris", "cv": 3}
CSV = b"a,b,label\n" + b"".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n".encode() for i in range(12))
SAMPLE_ARGS = {"kind": "param", "fmt": "csv", "name": "SVC", "prediction_id": 1}


@pytest.fixture
def search(owner: User) -> Search:
    return create_search(SPEC, owner=owner)


@pytest.fixture
def dataset(owner: User) -> Dataset:
    return dataset_upload(owner=owner, name="mine.csv", content=CSV, target="label")[0]


def every_url(search: Search, dataset: Dataset, owned_only: bool = False) -> list[tuple[str, str]]:
    """(name, url) of every route in search/urls.py, with this user's search or data set as the pk;
    `owned_only`: the routes of one owned object (those with a pk)."""
    out = []
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern) and pattern.name
        if owned_only and "pk" not in pattern.pattern.converters:
            continue
        kwargs: dict[str, Any] = {}
        for key in pattern.pattern.converters:
            if key == "pk":
                kwargs[key] = dataset.pk if pattern.name.startswith("dataset-") else search.pk
            else:
                special = {"api-generator": "make_moons", "search-model-download": "skops"}
                kwargs[key] = special.get(pattern.name) or SAMPLE_ARGS.get(key, "x")
        out.append((pattern.name, reverse(pattern.name, kwargs=kwargs)))
    return out


def owned_urls(search: Search, dataset: Dataset) -> list[tuple[str, str]]:
    owned = every_url(search, dataset, owned_only=True)
    return [*owned, ("search-new-from", reverse("search-new") + f"?from={search.pk}")]


def unchanged(search: Search, dataset: Dataset) -> None:
    search.refresh_from_db()
    assert search.status == Status.QUEUED and Search.objects.count() == 1
    assert Dataset.objects.filter(pk=dataset.pk).exists() and not ScalingStudy.objects.exists()


# --- anonymous --------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_everywhere(search: Search, dataset: Dataset) -> None:
    anonymous = login_client(None)
    for name, url in every_url(search, dataset):
        response = anonymous.get(url)
        if response.status_code == 405:  # a POST-only view
            response = anonymous.post(url)
        assert response.status_code == 302, (name, url, response.status_code)
        assert response["Location"].startswith(reverse("login") + "?next="), (name, url)
    unchanged(search, dataset)


# --- another user ------------------------------------------------------------------------------------


def test_another_user_gets_404_on_every_owned_object(search: Search, dataset: Dataset, other: User) -> None:
    client = login_client(other)
    names = set()
    for name, url in owned_urls(search, dataset):
        names.add(name)
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url)
        assert response.status_code == 404, (name, url, response.status_code)
    expected = {"search-detail", "search-progress", "search-leaderboard", "search-chart", "search-export",
                "search-cancel", "search-rerun", "search-study", "dataset-detail", "dataset-delete",
                "search-new-from", "search-model", "search-model-download", "search-predict",
                "search-prediction-download"}  # fmt: skip
    assert expected <= names, expected - names
    unchanged(search, dataset)
    lists = client.get(reverse("search-list")).content.decode() + client.get(reverse("dataset-list")).content.decode()
    assert "mine" not in lists


def test_another_users_data_set_cannot_be_used_in_a_search(dataset: Dataset, other: User) -> None:
    form = {"estimator": "SVC", "dataset_kind": "upload", "uploaded": str(dataset.pk), "cv_splits": "3", "n_jobs": "-1"}
    response = login_client(other).post(reverse("search-new"), form)
    assert response.status_code == 400
    assert "Select a valid choice" in " ".join(response.context["form"].errors["uploaded"])
    assert not Search.objects.exists() and queued_messages() == 0


# --- the admin ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["search", "workunit", "candidate", "result", "dataset", "scalingstudy"])
def test_the_admin_is_staff_only(model: str, owner: User, search: Search) -> None:
    for client in (login_client(None), login_client(owner)):  # owner is an ordinary, non-staff user
        for url in (reverse("admin:index"), reverse(f"admin:search_{model}_changelist")):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    response = login_client(owner).post(
        reverse("admin:search_search_changelist"), {"action": "cancel", "_selected_action": [search.pk]}
    )
    assert response.status_code == 302 and Search.objects.get().status == Status.QUEUED


def test_staff_without_permissions_sees_no_model(search: Search) -> None:
    staff = User.objects.create_user("staff", is_staff=True)
    response = login_client(staff).get(reverse("admin:search_search_changelist"))
    assert response.status_code == 403


# --- CSRF --------------------------------------------------------------------------------------------


def test_every_post_without_a_csrf_token_is_refused(search: Search, dataset: Dataset, owner: User) -> None:
    client = login_client(owner, enforce_csrf_checks=True)
    upload = {"target": "label", "file": SimpleUploadedFile("x.csv", CSV, content_type="text/csv")}
    posts = [
        (reverse("search-new"), {**SPEC, "estimator": "SVC", "dataset_kind": "builtin", "builtin": "iris"}),
        (reverse("search-estimate"), {"estimator": "SVC"}),
        (reverse("search-cancel", args=[search.pk]), {}),
        (reverse("search-rerun", args=[search.pk]), {}),
        (reverse("search-study", args=[search.pk]), {}),
        (reverse("dataset-upload"), upload),
        (reverse("dataset-delete", args=[dataset.pk]), {}),
        (reverse("admin:search_search_changelist"), {"action": "cancel", "_selected_action": [search.pk]}),
        (reverse("logout"), {}),
    ]
    datasets_before = Dataset.objects.count()
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    unchanged(search, dataset)
    assert Dataset.objects.count() == datasets_before and queued_messages() == 0
    page = client.get(reverse("search-new")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page  # the forms do carry it


# --- uploads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "content_type", "message"),
    [
        ("big.csv", b"a,label\n" + b"1,yes\n2,no\n" * 100_000, "text/csv", "the limit is 1 MB (FANOUT_MAX_UPLOAD_MB)"),
        ("model.pkl", pickle.dumps({"a": 1}), "application/octet-stream", "does not end in .csv"),
        ("model.csv", pickle.dumps({"a": 1}), "application/octet-stream", "not UTF-8 text"),
        ("page.csv", b"<html>", "text/html", "the file needs a header row"),
        ("tool.csv", b"MZ\x90\x00", "application/x-msdownload", "was sent as 'application/x-msdownload', not text"),
    ],
)
def test_oversized_and_disguised_uploads_are_refused(
    owner: User, settings: Any, filename: str, content: bytes, content_type: str, message: str
) -> None:
    settings.FANOUT_MAX_UPLOAD_MB = 1
    file = SimpleUploadedFile(filename, content, content_type=content_type)
    response = login_client(owner).post(reverse("dataset-upload"), {"target": "label", "file": file})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["file"])
    assert not Dataset.objects.exists()


# --- nothing imported by path, nothing unpickled ----------------------------------------------------


@pytest.mark.parametrize(
    "name", ["os.system", "sklearn.svm.SVC", "builtins.eval", "__import__", "subprocess.Popen", "SVC;rm", "SVC()"]
)
def test_estimators_come_from_the_registry_only(name: str, owner: User) -> None:
    with pytest.raises(KeyError, match="unknown estimator"):
        registry.lookup(name)
    assert login_client(owner).get(reverse("api-estimator", args=[name])).status_code == 404
    response = login_client(owner).post(reverse("search-new"), {"estimator": name, "dataset_kind": "builtin"})
    assert response.status_code == 400 and "Select a valid choice" in str(response.context["form"].errors)


def test_registry_refuses_modules_outside_scikit_learn() -> None:
    for module, name in [("os", "system"), ("subprocess", "Popen"), ("sklearnx", "SVC"), ("sklearn.utils", "resample")]:
        with pytest.raises(ValueError, match=r"not part of scikit-learn|is not a scikit-learn estimator"):
            registry.load_class(module, name)


FORBIDDEN_CALLS = {"eval", "exec", "__import__", "compile"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("joblib", "load"), ("marshal", "loads"),
                   ("yaml", "load"), ("importlib", "import_module")}  # fmt: skip


def test_no_code_path_unpickles_or_imports_user_input() -> None:
    """Static guard over our own code: no eval/exec, no unpickling, and an import by name only in the
    registry (which refuses anything outside scikit-learn, tested above)."""
    found = []
    for path in [*ROOT.joinpath("search").rglob("*.py"), *ROOT.joinpath("project").rglob("*.py")]:
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{path.relative_to(ROOT)}: {func.id}()")
            owner = func.value if isinstance(func, ast.Attribute) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(owner, ast.Name)
                and (owner.id, func.attr) in FORBIDDEN_ATTRS
            ):
                found.append(f"{path.relative_to(ROOT)}: {owner.id}.{func.attr}()")
    # the registry imports the class a user named only after finding it in scikit-learn's own list;
    # the runner pre-imports a fixed tuple of scikit-learn modules (WARM_MODULES); a model file's loader
    # imports only modules under `sklearn.`, to check that a type the file names is a class scikit-learn
    # defines (artifacts.trustable, tested in tests/engine/test_artifacts.py)
    assert sorted(found) == ["search/engine/artifacts.py: importlib.import_module()",
                             "search/engine/registry.py: importlib.import_module()",
                             "search/engine/run.py: importlib.import_module()"]  # fmt: skip


# --- production settings -----------------------------------------------------------------------------


def settings_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "FANOUT_VAR_DIR": str(tmp_path), "DJANGO_DEBUG": "0", **extra}


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    env = settings_env(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="fanout.example.com")
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "System check identified no issues" in text
    assert "WARNINGS" not in text and "identified some issues" not in text


def _settings(tmp_path: Path, **extra: str) -> dict[str, Any]:
    code = (
        "import json, project.settings as s; print(json.dumps({k: getattr(s, k, None) for k in "
        "['SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'DEBUG']}))"
    )
    env = settings_env(tmp_path, DJANGO_SECRET_KEY="k" * 60, **extra)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_https_is_on_for_served_hosts_and_off_for_the_local_make_run(tmp_path: Path) -> None:
    served = _settings(tmp_path, DJANGO_ALLOWED_HOSTS="fanout.example.com")
    assert served["SECURE_SSL_REDIRECT"] and served["SESSION_COOKIE_SECURE"] and served["CSRF_COOKIE_SECURE"]
    assert served["SECURE_HSTS_SECONDS"] == 31_536_000
    local = _settings(tmp_path)  # `make run`: DEBUG off, default hosts, plain http://127.0.0.1:8000/
    assert not local["SECURE_SSL_REDIRECT"] and not local["SESSION_COOKIE_SECURE"] and not local["CSRF_COOKIE_SECURE"]
    assert local["SECURE_HSTS_SECONDS"] == 0 and local["DEBUG"] is False
    forced_off = _settings(tmp_path, DJANGO_ALLOWED_HOSTS="10.0.0.5", DJANGO_HTTPS="0")
    assert not forced_off["SECURE_SSL_REDIRECT"] and forced_off["SECURE_HSTS_SECONDS"] == 0


def test_the_local_default_serves_plain_http(owner: User, settings: Any) -> None:
    """The test settings are the local default: a plain-HTTP request is answered, not redirected to https."""
    assert settings.SECURE_SSL_REDIRECT is False
    response = login_client(owner).get(reverse("search-list"))
    assert response.status_code == 200

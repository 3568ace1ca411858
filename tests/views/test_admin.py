"""The admin, as staff, a non-staff user and an anonymous visitor use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from search.models import Dataset, ScalingStudy, Search, Status
from search.services.scaling import study_create
from tests.conftest import create_search, run_inline

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

SPEC = {"name": "svc", "estimator": "SVC", "param_grid": {"C": [1, 10]}, "dataset": "iris", "cv": 3}
pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-test-password"))
    return client


@pytest.mark.parametrize("model", ["search", "workunit", "candidate", "result", "dataset"])
def test_every_model_is_listed(staff_client: Client, model: str) -> None:
    run_inline(create_search(SPEC))
    response = staff_client.get(reverse(f"admin:search_{model}_changelist"))
    assert response.status_code == 200


def test_search_list_shows_status_progress_best_and_cores(staff_client: Client) -> None:
    search = run_inline(create_search(SPEC))
    body = staff_client.get(reverse("admin:search_search_changelist") + "?status__exact=done").content.decode()
    assert "svc" in body and "6/6" in body and f"{search.best_score:.4f}" in body
    assert f'<td class="field-cores_used">{search.cores_used}</td>' in body
    detail = staff_client.get(reverse("admin:search_search_change", args=[search.pk])).content.decode()
    assert "&quot;param_grid&quot;" in detail  # the spec, pretty-printed
    assert staff_client.get(reverse("admin:search_search_add")).status_code == 403


def test_cancel_action(staff_client: Client) -> None:
    search = create_search(SPEC)
    response = staff_client.post(
        reverse("admin:search_search_changelist"), {"action": "cancel", "_selected_action": [search.pk]}, follow=True
    )
    assert "cancelled 1 searches" in response.content.decode().lower()
    search.refresh_from_db()
    assert search.status == Status.CANCELLED
    assert set(search.units.values_list("status", flat=True)) == {Status.CANCELLED}


def test_rerun_action_creates_a_linked_search(staff_client: Client) -> None:
    search = run_inline(create_search(SPEC))
    staff_client.post(reverse("admin:search_search_changelist"), {"action": "rerun", "_selected_action": [search.pk]})
    new = Search.objects.exclude(pk=search.pk).get()
    assert new.rerun_of == search and new.spec == search.spec and new.status == Status.QUEUED
    assert new.dataset == search.dataset


def test_only_finished_searches_can_be_deleted(staff_client: Client) -> None:
    running = create_search(SPEC)
    assert staff_client.get(reverse("admin:search_search_delete", args=[running.pk])).status_code == 403
    done = run_inline(create_search(SPEC))
    staff_client.post(reverse("admin:search_search_delete", args=[done.pk]), {"post": "yes"})
    assert list(Search.objects.values_list("pk", flat=True)) == [running.pk]


def test_results_are_read_only(staff_client: Client) -> None:
    search = run_inline(create_search(SPEC))
    result = search.results.first()
    assert result is not None
    url = reverse("admin:search_result_change", args=[result.pk])
    assert staff_client.get(url).status_code == 200
    staff_client.post(url, {"fold": 9})
    result.refresh_from_db()
    assert result.fold != 9


def test_non_staff_and_anonymous_are_sent_to_login() -> None:
    client = Client()
    url = reverse("admin:search_search_changelist")
    assert client.get(url).status_code == 302
    client.force_login(User.objects.create_user("user", password="a-long-test-password"))
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- who may do what in the admin: Django's permissions, and nothing running is deleted ----------------


def staff_client_with(*codenames: str) -> Client:
    """A staff user holding exactly these `search` permissions (none: staff and nothing else)."""
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", password="a-long-test-password")
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="search", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, action: str, *searches: Search) -> Response:
    url = reverse("admin:search_search_changelist")
    return client.post(url, {"action": action, "_selected_action": [s.pk for s in searches]})


@pytest.mark.parametrize("codenames", [(), ("view_search",)], ids=["no-permission", "view-only"])
def test_staff_without_the_delete_permission_gets_403(codenames: tuple[str, ...]) -> None:
    done = run_inline(create_search(SPEC))
    client = staff_client_with(*codenames)
    url = reverse("admin:search_search_delete", args=[done.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Search.objects.filter(pk=done.pk).exists()


@pytest.mark.parametrize("action", ["rerun", "cancel", "scaling_study", "scaling_study_machines"])
@pytest.mark.parametrize("codenames", [(), ("view_search",)], ids=["no-permission", "view-only"])
def test_staff_without_the_action_permission_gets_403(action: str, codenames: tuple[str, ...]) -> None:
    done = run_inline(create_search(SPEC))
    queued = create_search(SPEC)
    response = post_action(staff_client_with(*codenames), action, done, queued)
    assert response.status_code == 403
    assert Search.objects.count() == 2 and not ScalingStudy.objects.exists()
    assert Search.objects.get(pk=queued.pk).status == Status.QUEUED


def test_staff_with_the_delete_permission_deletes_a_finished_search() -> None:
    done = run_inline(create_search(SPEC))
    response = staff_client_with("view_search", "delete_search").post(
        reverse("admin:search_search_delete", args=[done.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Search.objects.exists()


def test_staff_with_the_add_permission_reruns() -> None:
    done = run_inline(create_search(SPEC))
    assert post_action(staff_client_with("view_search", "add_search"), "rerun", done).status_code == 302
    assert Search.objects.exclude(pk=done.pk).get().rerun_of == done


def test_staff_with_the_change_permission_cancels() -> None:
    queued = create_search(SPEC)
    assert post_action(staff_client_with("view_search", "change_search"), "cancel", queued).status_code == 302
    assert Search.objects.get(pk=queued.pk).status == Status.CANCELLED


def test_staff_with_the_add_permissions_starts_a_study() -> None:
    done = run_inline(create_search(SPEC))
    client = staff_client_with("view_search", "add_search", "add_scalingstudy")
    assert post_action(client, "scaling_study", done).status_code == 302
    assert ScalingStudy.objects.get().search == done


def test_the_study_action_needs_both_add_permissions() -> None:
    done = run_inline(create_search(SPEC))
    assert post_action(staff_client_with("view_search", "add_search"), "scaling_study", done).status_code == 403
    assert not ScalingStudy.objects.exists()


def test_deleting_a_running_search_is_refused_and_the_row_remains(staff_client: Client) -> None:
    running = create_search(SPEC)
    Search.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    response = staff_client.post(reverse("admin:search_search_delete", args=[running.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert "is running" in response.content.decode() and "cancel it first" in response.content.decode()
    assert Search.objects.get(pk=running.pk).status == Status.RUNNING
    assert running.units.exists()


def test_deleting_the_source_of_a_running_study_is_refused(staff_client: Client) -> None:
    done = run_inline(create_search(SPEC))
    study = study_create(search=done, n_jobs_list=[1, 2], enqueue=False)
    runs = set(study.runs.values_list("pk", flat=True))
    url = reverse("admin:search_search_delete", args=[done.pk])
    assert staff_client.get(url).status_code == 403
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 403 and f"scaling study {study.pk}" in response.content.decode()
    assert Search.objects.filter(pk=done.pk).exists() and ScalingStudy.objects.filter(pk=study.pk).exists()
    assert set(Search.objects.filter(study=study).values_list("pk", flat=True)) == runs


def test_deleting_a_finished_run_of_a_running_study_is_refused(staff_client: Client) -> None:
    done = run_inline(create_search(SPEC))
    study = study_create(search=done, n_jobs_list=[1, 2], enqueue=False)
    first = study.runs.order_by("pk").first()
    assert first is not None
    run_inline(first)
    assert ScalingStudy.objects.get(pk=study.pk).status in Status.ACTIVE
    response = staff_client.post(reverse("admin:search_search_delete", args=[first.pk]), {"post": "yes"})
    assert response.status_code == 403 and f"scaling study {study.pk}" in response.content.decode()
    assert Search.objects.filter(pk=first.pk).exists()


def test_a_finished_study_goes_with_its_search(staff_client: Client) -> None:
    done = run_inline(create_search(SPEC))
    study = study_create(search=done, n_jobs_list=[1], enqueue=False)
    for run in study.runs.all():
        run_inline(run)
    assert ScalingStudy.objects.get(pk=study.pk).status == Status.DONE
    staff_client.post(reverse("admin:search_search_delete", args=[done.pk]), {"post": "yes"})
    assert not Search.objects.exists() and not ScalingStudy.objects.exists()


@pytest.mark.parametrize("bulk", [False, True], ids=["delete-page", "bulk-action"])
def test_a_dataset_a_running_search_uses_is_not_deleted(staff_client: Client, bulk: bool) -> None:
    running = create_search(SPEC)
    if bulk:
        staff_client.post(
            reverse("admin:search_dataset_changelist"),
            {"action": "delete_selected", "_selected_action": [running.dataset_id], "post": "yes"},
        )
    else:
        staff_client.post(reverse("admin:search_dataset_delete", args=[running.dataset_id]), {"post": "yes"})
    assert Dataset.objects.filter(pk=running.dataset_id).exists() and Search.objects.filter(pk=running.pk).exists()

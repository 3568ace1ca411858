"""The admin, as staff, a non-staff user and an anonymous visitor use it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.models import Search, Status
from tests.conftest import create_search, run_inline

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

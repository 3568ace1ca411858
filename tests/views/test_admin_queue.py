"""The admin's queue by owner (selectors.queue): staff see each owner's live work; others are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.services.units import unit_claim
from tests.conftest import create_search

SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0, 10.0]}, "dataset": "iris", "cv": 2}
pytestmark = pytest.mark.django_db


def test_staff_see_two_owners_rows(owner: User, other: User, settings: Any, monkeypatch: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 2  # one candidate (2 fits) per unit: 3 units per search
    first = create_search(SPEC, owner=owner)
    create_search(SPEC, owner=owner)
    create_search(SPEC, owner=other)
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "node-1")
    assert unit_claim(unit_id=first.units.order_by("index")[0].pk) is not None
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-test-password"))
    changelist = client.get(reverse("admin:search_search_changelist"))
    assert reverse("admin:search_search_queue") in changelist.content.decode()  # linked from the searches
    page = client.get(reverse("admin:search_search_queue"))
    assert page.status_code == 200
    rows = [[c.strip() for c in r] for r in _cells(page.content.decode())]
    assert rows == [
        ["owner", "2", "5", "10", "1", "node-1"],  # two searches: 5 of 6 units queued (10 fits), 1 running
        ["other", "1", "3", "6", "0", "—"],
    ]


def test_others_are_refused(client_for: Any, owner: User) -> None:
    url = reverse("admin:search_search_queue")
    response = client_for(owner).get(url)  # logged in, not staff
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert client_for(None).get(url).status_code == 302
    staff = User.objects.create_user("staff", password="a-long-test-password", is_staff=True)  # no view permission
    assert client_for(staff).get(url).status_code == 403


def _cells(html: str) -> list[list[str]]:
    body = html.split('<table id="queue-by-owner">')[1].split("<tbody>")[1].split("</tbody>", maxsplit=1)[0]
    rows = [r.split("</tr>")[0] for r in body.split("<tr>")[1:]]
    return [[c.split("</td>")[0] for c in r.split("<td>")[1:]] for r in rows]

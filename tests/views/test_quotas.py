"""A per-user limit (services.quotas) on the new-search form: the page again, with the message, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from search.models import Search
from tests.conftest import create_search
from tests.views.test_searches import FORM, SPEC


@pytest.mark.django_db
def test_the_form_says_the_limit(client_for: Any, owner: User, settings: Any) -> None:
    settings.FANOUT_MAX_ACTIVE_SEARCHES_PER_USER = 1
    create_search(SPEC, owner=owner)
    response = client_for(owner).post(reverse("search-new"), FORM)
    assert response.status_code == 400
    assert "you have 1 search queued or running; the limit is 1 per user" in response.content.decode()
    assert "FANOUT_MAX_ACTIVE_SEARCHES_PER_USER" in response.content.decode()
    assert Search.objects.filter(owner=owner).count() == 1

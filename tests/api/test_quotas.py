"""A per-user limit (services.quotas) through the API: a 400 in the API's error shape, nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from search.models import Search
from tests.api.conftest import assert_error
from tests.conftest import create_search

SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0]}, "dataset": "iris", "cv": 2}


@pytest.mark.django_db
def test_the_api_says_the_limit(api: Client, owner: User, settings: Any) -> None:
    settings.FANOUT_MAX_QUEUED_FITS_PER_USER = 5
    create_search(SPEC, owner=owner)
    response = api.post("/api/v1/searches", json.dumps(SPEC), content_type="application/json")
    body = assert_error(response, 400, "quota")
    assert "the limit is 5 per user (FANOUT_MAX_QUEUED_FITS_PER_USER)" in body["detail"]
    assert Search.objects.filter(owner=owner).count() == 1

"""Per-user limits (services.quotas): who is refused, with what message, and who is not limited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from search.engine.spec import SpecError
from search.models import Search
from search.services.searches import search_cancel
from tests.conftest import create_search

SIX = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0, 10.0]}, "dataset": "iris", "cv": 2}


@pytest.mark.django_db
def test_queued_fits_per_user(owner: User, other: User, settings: Any) -> None:
    settings.FANOUT_MAX_QUEUED_FITS_PER_USER = 10
    create_search(SIX, owner=owner)
    with pytest.raises(SpecError) as refused:
        create_search(SIX, owner=owner)
    assert refused.value.field == "quota"
    assert refused.value.message.startswith("this search's 6 fits and the 6 not done yet in your queued and running")
    assert "make 12; the limit is 10 per user (FANOUT_MAX_QUEUED_FITS_PER_USER)" in refused.value.message
    assert "cancel one" in refused.value.message
    assert Search.objects.filter(owner=owner).count() == 1  # nothing stored
    create_search(SIX, owner=other)  # another user's own budget
    create_search(SIX)  # no owner (runsearch without --owner): not limited
    create_search(SIX)
    search_cancel(search=Search.objects.get(owner=owner))
    create_search(SIX, owner=owner)  # a cancelled search holds nothing
    settings.FANOUT_MAX_QUEUED_FITS_PER_USER = 0  # 0 = no limit
    create_search(SIX, owner=owner)


@pytest.mark.django_db
def test_active_searches_per_user(owner: User, settings: Any) -> None:
    settings.FANOUT_MAX_ACTIVE_SEARCHES_PER_USER = 2
    create_search(SIX, owner=owner)
    create_search(SIX, owner=owner)
    with pytest.raises(SpecError, match="you have 2 searches queued or running; the limit is 2 per user"):
        create_search(SIX, owner=owner)
    settings.FANOUT_MAX_ACTIVE_SEARCHES_PER_USER = 0
    create_search(SIX, owner=owner)

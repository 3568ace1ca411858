"""A per-user limit (services.quotas) in `runsearch --owner`: a one-line error and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from search.models import Search
from tests.conftest import create_search

SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1.0]}, "dataset": "iris", "cv": 2}


@pytest.mark.django_db
def test_runsearch_says_the_limit(tmp_path: Path, owner: User, settings: Any) -> None:
    settings.FANOUT_MAX_ACTIVE_SEARCHES_PER_USER = 1
    create_search(SPEC, owner=owner)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    with pytest.raises(CommandError) as refused:
        call_command("runsearch", str(path), "--owner", "owner", "--no-wait")
    assert refused.value.returncode == 2
    assert "quota: you have 1 search queued or running; the limit is 1 per user" in str(refused.value)
    assert Search.objects.filter(owner=owner).count() == 1
    call_command("runsearch", str(path), "--no-wait")  # without --owner: not limited

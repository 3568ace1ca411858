"""Every spec shipped in examples/ is valid (the README points newcomers at them)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from project.cluster import ROOT
from search.models import Search

EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(path: Path) -> None:
    out = io.StringIO()
    call_command("runsearch", str(path), "--no-wait", stdout=out)
    specs = json.loads(path.read_text())
    assert Search.objects.count() == (len(specs) if isinstance(specs, list) else 1)

"""A CSV data set's bytes stay in the database until a machine needs its file: a row read without them
(`defer("content")`, as every page and poll reads it) loads them only to write the missing cached copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search.models import Dataset
from search.services.datasets import dataset_create_from_upload

pytestmark = pytest.mark.django_db
CSV = b"a,b,y\n" + b"".join(f"{i},{i * 2},{i % 2}\n".encode() for i in range(40))


def test_a_cached_csv_file_is_used_without_loading_the_bytes(settings: Any, tmp_path: Path) -> None:
    settings.FANOUT_CACHE_DIR = tmp_path / "cache"
    dataset = dataset_create_from_upload(owner=None, name="rows.csv", content=CSV, target="y")
    lazy = Dataset.objects.defer("content").get(pk=dataset.pk)
    with CaptureQueriesContext(connection) as first:
        path = lazy.local_path()
    assert path is not None and Path(path).read_bytes() == CSV
    assert len(first) == 1  # this machine had no copy: the bytes were read once, to write it
    again = Dataset.objects.defer("content").get(pk=dataset.pk)
    with CaptureQueriesContext(connection) as second:
        assert again.local_path() == path
    assert len(second) == 0
    Path(path).unlink()  # a machine whose cache was emptied writes it again
    assert Dataset.objects.defer("content").get(pk=dataset.pk).local_path() == path
    assert Path(path).read_bytes() == CSV

"""Fit rows inserted by one executemany are stored byte for byte as `bulk_create` stores them; conflicts skipped.

Runs on SQLite and, in `make pytest-scaleout`, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from search.models import Candidate, Result, Search
from search.services.inserts import insert_ignoring_conflicts
from tests.conftest import create_search

pytestmark = pytest.mark.django_db

COLUMNS = [str(f.column) for f in Result._meta.concrete_fields if f.column not in ("id", "candidate_id")]


def rows(search: Search, candidate: Candidate) -> list[Result]:
    unit = search.units.get()
    when = datetime(2026, 12, 2, 8, 30, 1, 123456, tzinfo=UTC)
    values: list[dict[str, Any]] = [
        {"test_scores": {"score": 0.9333333333333333}, "train_scores": None, "error": ""},
        {"test_scores": {"score": None}, "train_scores": {"score": 1.0}, "error": 'ValueError: bad "input" ü'},
        {
            "test_scores": {"a": 1e-300, "b": -0.0},
            "train_scores": {"a": 0.5, "b": 2.0},
            "error": "",
            "path_reused": True,
        },
    ]
    return [
        Result(
            search=search,
            candidate=candidate,
            fold=fold,
            unit=unit,
            attempt=2,
            fit_time=0.001234567890123,
            score_time=4.5e-05,
            started_at=when,
            finished_at=when.replace(microsecond=999999),
            host="box-ä",
            pid=4242,
            n_test_samples=30,
            fit_key="ab" * 32 if fold else "",
            **v,
        )
        for fold, v in enumerate(values)
    ]


def stored(candidate: Candidate) -> list[tuple[Any, ...]]:
    quoted = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quoted} FROM {Result._meta.db_table} WHERE candidate_id = %s ORDER BY fold", [candidate.pk]
        )
        return [tuple(row) for row in cursor.fetchall()]


def test_the_rows_are_stored_as_bulk_create_stores_them_and_a_stored_cell_is_left_as_it_is() -> None:
    search = create_search({"estimator": "Ridge", "param_grid": {"alpha": [1.0, 2.0]}, "dataset": "diabetes"})
    first, second = search.candidates.order_by("index")
    Result.objects.bulk_create(rows(search, first), ignore_conflicts=True)
    insert_ignoring_conflicts(rows(search, second))
    assert stored(second) == stored(first) and len(stored(second)) == 3
    again = rows(search, second)
    for row in again:
        row.host, row.test_scores = "another", {"score": 0.0}
    insert_ignoring_conflicts(again)  # the same (candidate, fold) cells: skipped, not overwritten
    assert stored(second) == stored(first)
    loaded = Result.objects.get(candidate=second, fold=1)
    assert loaded.test_scores == {"score": None} and loaded.train_scores == {"score": 1.0}
    assert loaded.started_at == datetime(2026, 12, 2, 8, 30, 1, 123456, tzinfo=UTC)
    assert Result.objects.get(candidate=second, fold=0).train_scores is None

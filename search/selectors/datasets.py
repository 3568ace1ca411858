"""Data sets for the pages: a user's list with use counts, and a preview (rows, columns, class balance)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Count, QuerySet

from search.engine import datasets
from search.engine.errors import SpecError
from search.engine.run import load_data
from search.models import Dataset

PREVIEW_ROWS = 20


MAX_CLASSES = 20


def datasets_of(*, owner: Any) -> QuerySet[Dataset]:
    """A user's data sets, newest first, with `n_searches`; without the CSV bytes."""
    return (
        Dataset.objects.filter(owner=owner)
        .defer("content")
        .annotate(n_searches=Count("searches"))
        .order_by("-created_at", "-id")
    )


def owner_dataset(*, owner: Any, dataset_id: int) -> Dataset:
    """The owner's data set `dataset_id` (without its bytes), for a spec's `{"id": N}`. SpecError on `dataset.id`
    for an unknown id and for another user's row alike: the message never tells them apart."""
    if owner is None or getattr(owner, "pk", None) is None:
        raise SpecError(
            "dataset.id",
            "names one of its owner's uploaded data sets, and this search has no owner (runsearch: --owner USERNAME)",
        )
    found = Dataset.objects.filter(pk=dataset_id, owner=owner).defer("content").first()
    if found is None:
        raise SpecError("dataset.id", f"no data set {dataset_id} among yours")
    return found


@dataclass(frozen=True)
class ClassCount:
    label: str
    count: int
    percent: float


@dataclass(frozen=True)
class Preview:
    """The first rows of a data set (as text) and, for a categorical target, its class balance."""

    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    target_index: int | None = None
    categorical: bool = False
    n_classes: int = 0
    classes: list[ClassCount] = field(default_factory=list)
    error: str = ""
    n_groups: int | None = None  # distinct group labels of an .npz with `groups`; None without groups


def _label_kind(labels: Iterable[str]) -> str:
    """'int', 'float' or 'str': how `engine.datasets.read_csv` would type this target column."""
    values = list(labels)
    for cast, kind in ((int, "int"), (float, "float")):
        try:
            for v in values:
                cast(v)
        except ValueError:
            continue
        return kind
    return "str"


def _balance(counts: Counter[str], total: int, categorical: bool) -> tuple[int, list[ClassCount]]:
    if not categorical or len(counts) > MAX_CLASSES:
        return len(counts), []
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return len(counts), [ClassCount(label, n, 100.0 * n / total if total else 0.0) for label, n in ordered]


def _csv_preview(dataset: Dataset) -> Preview:
    content = bytes(dataset.content or b"")
    target = str(dataset.source.get("target", ""))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Preview(error=f"the stored file is not UTF-8 text (byte {exc.start})")
    reader = (r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r))
    header = [h.strip() for h in next(reader, [])]
    t = header.index(target) if target in header else None
    rows: list[list[str]] = []
    counts: Counter[str] = Counter()
    for row in reader:
        if len(rows) < PREVIEW_ROWS:
            rows.append([cell.strip() for cell in row])
        if t is not None and t < len(row):
            counts[row[t].strip()] += 1
    categorical = t is not None and _label_kind(counts) != "float"
    n_classes, classes = _balance(counts, sum(counts.values()), categorical)
    return Preview(header, rows, t, categorical, n_classes if categorical else 0, classes)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return str(value)


def _loaded_preview(dataset: Dataset) -> Preview:
    try:
        data = load_data(dataset.data_source())
    except (datasets.DatasetError, ValueError, KeyError, OSError) as exc:
        return Preview(error=f"cannot load this data set: {exc}")
    columns = [*data.feature_names, data.target_name]
    rows = [[*(_fmt(v) for v in data.X[i]), _fmt(data.y[i])] for i in range(min(PREVIEW_ROWS, data.n_samples))]
    categorical = data.y.dtype.kind in "iubUSO"
    counts: Counter[str] = Counter(str(v) for v in data.y.tolist()) if categorical else Counter()
    n_classes, classes = _balance(counts, data.n_samples, categorical)
    n_groups = len(np.unique(data.groups)) if data.groups is not None else None
    return Preview(columns, rows, len(columns) - 1, categorical, n_classes, classes, n_groups=n_groups)


def dataset_preview(*, dataset: Dataset) -> Preview:
    """The first `PREVIEW_ROWS` rows and the class balance (up to `MAX_CLASSES` classes) of a data set, and for an
    .npz with groups how many distinct groups it has."""
    if dataset.kind == Dataset.Kind.CSV:
        return _csv_preview(dataset)
    return _loaded_preview(dataset)

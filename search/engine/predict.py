"""Predictions for a CSV file, streamed: rows are read, predicted and written a chunk at a time.

The file's columns are matched to the model's features by name, so their order does not matter and extra
columns (such as the target) are ignored. Values are written at full precision: a float read back with
`float(cell)` is exactly the one the model returned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TextIO

import numpy as np
from sklearn.base import BaseEstimator, is_classifier

from . import datasets


class PredictError(ValueError):
    """A file that cannot be predicted. `field` is the column at fault, or `file`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def output_columns(model: BaseEstimator) -> list[str]:
    """`prediction`, then `proba_<class>` per class for a classifier with a usable `predict_proba`."""
    columns = ["prediction"]
    # hasattr is False for a Pipeline whose last step has no predict_proba (scikit-learn's available_if).
    if is_classifier(model) and hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        columns += [f"proba_{_text(c)}" for c in np.asarray(model.classes_).tolist()]
    return columns


def check_header(header_line: str, features: list[str]) -> None:
    """Raise the `PredictError` that `predict_csv` would raise for this header line (a file's first
    non-blank line): a web view can check an upload's first line before reading the rest."""
    _columns(_header(_rows(io.StringIO(header_line))), features)


def predict_csv(
    model: BaseEstimator, features: list[str], src: TextIO, dst: TextIO, *, chunk_rows: int = 10_000
) -> int:
    """Write `output_columns(model)` and one line per data row of `src` to `dst`, in input order; return the
    number of rows.

    `src` is CSV with a header row naming at least every one of `features`; blank lines are skipped. Every
    problem with the file raises `PredictError`; `dst` may then hold the lines written before it.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    rows = _rows(src)
    header = _header(rows)
    index = _columns(header, features)
    columns = output_columns(model)
    writer = csv.writer(dst)
    writer.writerow(columns)
    total = 0
    for X in _chunks(rows, len(header), index, features, chunk_rows):
        writer.writerows(_lines(model, X, with_proba=len(columns) > 1))
        total += X.shape[0]
    if total == 0:
        raise PredictError("file", "the file has a header but no data rows")
    return total


def _rows(src: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank row; the line is the row's last physical line."""
    reader = csv.reader(src)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, row
    except csv.Error as exc:  # a NUL byte, a field above csv's size limit
        raise PredictError("file", f"the file is not valid CSV (line {reader.line_num}): {exc}") from None
    except UnicodeDecodeError as exc:
        raise PredictError("file", f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _header(rows: Iterator[tuple[int, list[str]]]) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise PredictError("file", "the file is empty")
    header = [cell.strip() for cell in first[1]]
    header[0] = header[0].removeprefix("\ufeff").strip()  # a BOM, when src was not opened as utf-8-sig
    return header


def _columns(header: list[str], features: list[str]) -> list[int]:
    """The position in `header` of each of `features`, in the order of `features`."""
    wanted, positions = set(features), {}
    for i, name in enumerate(header):
        if name in wanted:
            if name in positions:
                raise PredictError(name, f"the header names column {name!r} {header.count(name)} times")
            positions[name] = i
    missing = [name for name in features if name not in positions]
    if not missing:
        return [positions[name] for name in features]
    if all(datasets.is_number(cell) for cell in header):
        message = "the first row holds numbers, not column names; add a header row"
    else:
        message = f"the file's columns are {', '.join(map(repr, header))}"
    raise PredictError(
        missing[0],
        f"the file has no column {', '.join(map(repr, missing))} (the model needs {', '.join(map(repr, features))}); "
        f"{message}",
    )


def _chunks(
    rows: Iterator[tuple[int, list[str]]], width: int, index: list[int], features: list[str], chunk_rows: int
) -> Iterator[np.ndarray]:
    """Float64 arrays of at most `chunk_rows` rows, columns in the order of `features`."""
    X, n = np.empty((chunk_rows, len(index))), 0
    for line, row in rows:
        if len(row) != width:
            raise PredictError("file", f"line {line} has {len(row)} fields, the header has {width}")
        for j, (i, name) in enumerate(zip(index, features, strict=True)):
            try:
                X[n, j] = datasets.parse_cell(row[i], name, line)
            except datasets.DatasetError as exc:
                raise PredictError(name, str(exc)) from None
        n += 1
        if n == chunk_rows:
            yield X
            X, n = np.empty((chunk_rows, len(index))), 0
    if n:
        yield X[:n]


def _lines(model: BaseEstimator, X: np.ndarray, *, with_proba: bool) -> list[list[str]]:
    predictions = np.asarray(model.predict(X)).tolist()
    if not with_proba:
        return [[_text(p)] for p in predictions]
    probas = np.asarray(model.predict_proba(X)).tolist()
    return [[_text(p), *map(_text, ps)] for p, ps in zip(predictions, probas, strict=True)]


def _text(value: object) -> str:
    """A value as text that reads back exactly: repr of a float (not NumPy's `np.float64(...)`)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)

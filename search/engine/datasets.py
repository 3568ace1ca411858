"""Data sets: scikit-learn's bundled loaders, its generators, and CSV files with a named target column.

Everything here is deterministic: a generator without `random_state` gets `random_state=0` at
validation time, so every worker process that rebuilds the data gets the same rows.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import datasets as skd

BUILTIN: dict[str, Callable[..., Any]] = {
    "iris": skd.load_iris,
    "wine": skd.load_wine,
    "breast_cancer": skd.load_breast_cancer,
    "digits": skd.load_digits,
    "diabetes": skd.load_diabetes,
}
BUILTIN_TASK = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}
GENERATORS: dict[str, Callable[..., Any]] = {
    "make_classification": skd.make_classification,
    "make_regression": skd.make_regression,
    "make_moons": skd.make_moons,
    "make_blobs": skd.make_blobs,
}
GENERATOR_TASK = {
    "make_classification": "classification",
    "make_regression": "regression",
    "make_moons": "classification",
    "make_blobs": "classification",
}
# Options that only change the return type; allowing them would break (X, y).
_RESERVED_OPTIONS = {"return_X_y", "as_frame", "return_centers", "coef"}


class DatasetError(ValueError):
    """A data set that cannot be loaded; the message says what came in and what is allowed."""


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


def generator_options(name: str) -> dict[str, Any]:
    """The generator's keyword options with their defaults (shown to users, checked against)."""
    sig = inspect.signature(GENERATORS[name])
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.default is not inspect.Parameter.empty and p.name not in _RESERVED_OPTIONS
    }


def normalise_generator_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    if name not in GENERATORS:
        raise DatasetError(f"unknown generator {name!r}; allowed: {', '.join(GENERATORS)}")
    allowed = generator_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {name}; allowed: {', '.join(sorted(allowed))}"
        )
    out = dict(options)
    out.setdefault("random_state", 0)  # same rows in every process
    return out


def load_builtin(name: str) -> Data:
    if name not in BUILTIN:
        raise DatasetError(f"unknown data set {name!r}; allowed: {', '.join(BUILTIN)}")
    bunch = BUILTIN[name]()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
    return Data(X=bunch.data, y=bunch.target, feature_names=names, target_name="target")


def generate(name: str, options: dict[str, Any]) -> Data:
    opts = normalise_generator_options(name, options)
    try:
        X, y = GENERATORS[name](**opts)
    except (TypeError, ValueError) as exc:  # sklearn's own validate_params messages
        raise DatasetError(f"{name}: {exc}") from None
    return Data(X=X, y=y, feature_names=[f"x{i}" for i in range(X.shape[1])], target_name="y")


def _column(values: list[str]) -> np.ndarray:
    """Integers if every value is one, else floats, else strings (class labels)."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)


def read_csv(content: bytes, target: str) -> Data:
    """Parse CSV bytes with a header row; every column but `target` must be numeric."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise DatasetError("the file needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise DatasetError(f"target column {target!r} not in the header; columns: {', '.join(header)}")
    width = len(header)
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DatasetError(f"line {lineno} has {len(row)} fields, the header has {width}")
    t = header.index(target)
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise DatasetError("the file has no feature columns besides the target")
    X = np.empty((len(rows) - 1, len(features)), dtype=np.float64)
    for j, col in enumerate(i for i in range(width) if i != t):
        for i, row in enumerate(rows[1:]):
            cell = row[col].strip()
            try:
                value = float(cell)
            except ValueError:
                raise DatasetError(
                    f"column {header[col]!r} is not numeric (line {i + 2}: {cell!r}); features must be numbers"
                ) from None
            if not math.isfinite(value):
                raise DatasetError(f"column {header[col]!r} has a missing or infinite value on line {i + 2}")
            X[i, j] = value
    y = _column([row[t].strip() for row in rows[1:]])
    return Data(X=X, y=y, feature_names=features, target_name=target)


def read_csv_file(path: str | Path, target: str) -> Data:
    return read_csv(Path(path).read_bytes(), target)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()

"""Data sets: scikit-learn's bundled loaders, its generators, CSV files with a named target column, and NumPy
`.npz` archives of arrays `X`, `y` and optionally `groups`.

Everything here is deterministic: a generator without `random_state` gets `random_state=0` at
validation time, so every worker process that rebuilds the data gets the same rows; `random_state: null`
(fresh rows in every process) is refused.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import math
import zipfile
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
# Generated data above this many values (n_samples × n_features, plus make_regression's n_samples × n_targets
# targets and n_features × n_targets coefficients, plus the clusters' centres; 400 MB of float64) is refused up
# front.
MAX_GENERATED_VALUES = 50_000_000
# Clusters built one at a time in a Python loop (make_classification's n_classes × n_clusters_per_class,
# make_blobs' centers).
MAX_GENERATED_CLUSTERS = 10_000
# make_classification multiplies every row by an n_informative × n_informative matrix: n_samples ×
# n_informative² multiply-adds (4·10^10 took 2.5 s on 2 busy cores).
MAX_CLASSIFICATION_WORK = 40_000_000_000
# make_regression's effective_rank builds a low-rank matrix with two QR decompositions: about n_samples ×
# n_features × min(n_samples, n_features) operations at a poor rate (5,000 × 2,000 × 2,000 took 47 s).
MAX_LOW_RANK_WORK = 1_000_000_000
_DEFAULT_FEATURES = {"make_moons": 2}


class DatasetError(ValueError):
    """A data set that cannot be loaded; the message says what came in and what is allowed."""


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    groups: np.ndarray | None = None  # one label per row (an .npz's `groups`), for GroupKFold

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


def generator_options(name: str) -> dict[str, Any]:
    """The generator's keyword options with their defaults (shown to users, checked against)."""
    sig = inspect.signature(GENERATORS[name])
    options = {
        p.name: p.default
        for p in sig.parameters.values()
        if p.default is not inspect.Parameter.empty and p.name not in _RESERVED_OPTIONS
    }
    if "random_state" in options:
        options["random_state"] = 0  # ours, not the generator's None: the same rows in every process
    return options


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
    if out["random_state"] is None:
        raise DatasetError(
            "random_state null draws different rows in every process; give an integer seed, or leave it out for 0"
        )
    _check_generated_size(name, out, allowed)
    return out


def _count(value: Any) -> int | None:
    """An int option, or the total of a list of ints (make_blobs' per-centre n_samples); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)) and value and all(type(v) is int for v in value):
        return sum(value)
    return None


def _check_generated_size(name: str, options: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Refuse generated data whose arrays or work exceed the limits above, counting every option that sizes
    an array (not only n_samples × n_features). Options that are not positive integers are left to the
    generator's own validation."""

    def count(key: str, fallback: Any = None) -> int | None:
        n = _count(options.get(key, defaults.get(key, fallback)))
        return n if n is not None and n > 0 else None

    n_samples, n_features = count("n_samples"), count("n_features", _DEFAULT_FEATURES.get(name, 2))
    if n_samples is None or n_features is None:
        return  # the generator's own validation says what is wrong with them
    if n_samples * n_features > MAX_GENERATED_VALUES:
        raise DatasetError(
            f"{name} would generate {n_samples:,} × {n_features:,} = {n_samples * n_features:,} values; "
            f"the limit is {MAX_GENERATED_VALUES:,} (lower n_samples or n_features)"
        )
    parts, total = [f"X: {n_samples:,} × {n_features:,}"], n_samples * n_features
    clusters: tuple[str, int] | None = None
    work: tuple[str, int, int, str] | None = None  # (what for, operations, limit, what to lower)
    if name == "make_regression" and (n_targets := count("n_targets")) is not None:
        parts += [f"y: {n_samples:,} × {n_targets:,}", f"coefficients: {n_features:,} × {n_targets:,}"]
        total += (n_samples + n_features) * n_targets
    if name == "make_regression" and options.get("effective_rank") is not None:
        what = f"to build a low-rank {n_samples:,} × {n_features:,} matrix for effective_rank"
        ops = n_samples * n_features * min(n_samples, n_features)
        work = (what, ops, MAX_LOW_RANK_WORK, "lower n_samples or n_features, or leave effective_rank out")
    if name == "make_classification":
        n_informative, n_classes, per_class = count("n_informative"), count("n_classes"), count("n_clusters_per_class")
        if n_informative is not None and n_classes is not None and per_class is not None:
            clusters = ("n_classes × n_clusters_per_class", n_classes * per_class)
            parts.append(f"centroids: {clusters[1]:,} × {n_informative:,}")
            total += clusters[1] * n_informative
            what = f"to multiply each row by an n_informative × n_informative matrix ({n_informative:,}²)"
            ops = (n_samples + clusters[1]) * n_informative**2
            work = (what, ops, MAX_CLASSIFICATION_WORK, "lower n_informative or n_samples")
    if name == "make_blobs":
        centers = options.get("centers", defaults.get("centers"))
        n_centers = len(options["n_samples"]) if isinstance(options.get("n_samples"), list) else _count(centers)
        if n_centers is not None and not isinstance(centers, list):
            clusters = ("centers", n_centers)
            parts.append(f"centres: {n_centers:,} × {n_features:,}")
            total += n_centers * n_features
    if clusters is not None and clusters[1] > MAX_GENERATED_CLUSTERS:
        raise DatasetError(
            f"{name} would build {clusters[0]} = {clusters[1]:,} clusters, one at a time; the limit is "
            f"{MAX_GENERATED_CLUSTERS:,}"
        )
    if total > MAX_GENERATED_VALUES:
        raise DatasetError(
            f"{name} would generate {total:,} values ({', '.join(parts)}); the limit is {MAX_GENERATED_VALUES:,} "
            "(lower the options that multiply them)"
        )
    if work is not None and work[1] > work[2]:
        raise DatasetError(
            f"{name} would take about {work[1]:,} operations {work[0]}; the limit is {work[2]:,} ({work[3]})"
        )


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
    except Exception as exc:  # noqa: BLE001 - user options can break a generator in any way; say how
        raise DatasetError(f"{name}: {exc or type(exc).__name__}") from None
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


def _rows(content: bytes) -> list[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    if "\x00" in text:
        raise DatasetError("the file holds NUL bytes: it is binary, not CSV text")
    try:
        return [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    except csv.Error as exc:  # e.g. a field above csv's size limit
        raise DatasetError(f"the file is not valid CSV: {exc}") from None


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _header(rows: list[list[str]], target: str) -> list[str]:
    if len(rows) < 2:
        raise DatasetError("the file needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        if header and all(is_number(h) for h in header):
            raise DatasetError(
                f"the first row ({', '.join(header[:5])}{', …' if len(header) > 5 else ''}) holds numbers, not "
                "column names; add a header row"
            )
        raise DatasetError(f"target column {target!r} not in the header; columns: {', '.join(header)}")
    if header.count(target) > 1:
        raise DatasetError(f"the header names column {target!r} {header.count(target)} times; names must be unique")
    return header


def parse_cell(cell: str, column: str, line: int) -> float:
    cell = cell.strip()
    if not cell:
        raise DatasetError(f"column {column!r} has an empty (missing) value on line {line}; fill it or drop the row")
    try:
        value = float(cell)
    except ValueError:
        raise DatasetError(
            f"column {column!r} is not numeric (line {line}: {cell[:40]!r}); features must be numbers"
        ) from None
    if not math.isfinite(value):
        raise DatasetError(f"column {column!r} has a missing or infinite value on line {line} ({cell!r})")
    return value


def read_csv(content: bytes, target: str) -> Data:
    """Parse CSV bytes with a header row; every column but `target` must be numeric and finite."""
    rows = _rows(content)
    header = _header(rows, target)
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
            X[i, j] = parse_cell(row[col], header[col], i + 2)
    labels = [row[t].strip() for row in rows[1:]]
    for i, label in enumerate(labels):
        if not label or (is_number(label) and not math.isfinite(float(label))):
            raise DatasetError(f"the target column {target!r} has a missing or infinite value on line {i + 2}")
    y = _column(labels)
    return Data(X=X, y=y, feature_names=features, target_name=target)


def read_csv_file(path: str | Path, target: str) -> Data:
    return read_csv(Path(path).read_bytes(), target)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# ---------------------------------------------------------------------------------------------
# NumPy .npz archives
# ---------------------------------------------------------------------------------------------

NPZ_ARRAYS = ("X", "y", "groups")
# Values of all the arrays of one .npz together (as MAX_GENERATED_VALUES: 400 MB of float64), read from the
# arrays' headers before anything is decompressed: a compressed archive of a few MB can hold gigabytes of zeros.
MAX_NPZ_VALUES = MAX_GENERATED_VALUES
_NUMERIC = "biuf"  # bool, signed and unsigned integers, floats
_HOW = "save them with np.savez(file, X=X, y=y) (and groups=groups)"


def _npz_headers(archive: zipfile.ZipFile, names: list[str]) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """(shape, dtype) of each named array, from its .npy header; refuses object arrays and archives too large."""
    from numpy.lib import format as npy

    found: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
    total = 0
    for name in names:
        member = f"{name}.npy" if f"{name}.npy" in archive.namelist() else name
        with archive.open(member) as f:
            try:
                version = npy.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = npy.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = npy.read_array_header_2_0(f)
                else:
                    raise DatasetError(f"array {name!r} uses .npy format {version}; {_HOW}")
            except DatasetError:
                raise
            except ValueError:
                raise DatasetError(f"{name!r} in the archive is not a NumPy array; {_HOW}") from None
        if dtype.hasobject:
            raise DatasetError(
                f"array {name!r} holds Python objects (dtype object), which are not loaded (they would be unpickled); "
                "save numbers, or text as a unicode string array (y.astype(str))"
            )
        total += math.prod(shape)
        found[name] = (tuple(shape), dtype)
    if total > MAX_NPZ_VALUES:
        raise DatasetError(f"the arrays hold {total:,} values; the limit is {MAX_NPZ_VALUES:,}")
    return found


def _npz_column(name: str, array: np.ndarray, n_rows: int, kinds: str) -> np.ndarray:
    """A 1-D array of `n_rows` values of one of `kinds` (dtype kinds), finite where it is floats."""
    if array.ndim != 1:
        hint = f" (use {name}.ravel())" if array.ndim == 2 and 1 in array.shape else ""
        raise DatasetError(f"{name} must be 1-D, one value per row; got shape {array.shape}{hint}")
    if array.dtype.kind not in kinds:
        what = "numbers or unicode strings" if "U" in kinds else "numbers"
        raise DatasetError(f"{name} has dtype {array.dtype}; expected {what}")
    if len(array) != n_rows:
        raise DatasetError(f"{name} has {len(array)} values and X has {n_rows} rows; they must match")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array))[0])
        raise DatasetError(f"{name} has a missing or infinite value at row {row} ({float(array[row])})")
    return array


def read_npz(content: bytes) -> Data:
    """Arrays `X` (2-D, numeric, no infinity; NaN marks a missing value), `y` (1-D: numbers or unicode strings)
    and optionally `groups` (1-D, one per row) from an .npz archive (`np.savez`), read with `allow_pickle=False`.

    X is stored as float64, as `read_csv` stores features: a float64 X is kept bit for bit, so every score equals
    scikit-learn's on the user's own arrays; bools and integers become the float64 a CSV of them reads as (what
    scikit-learn's input check makes of them for most estimators), and float16/float32 are widened, so their scores
    are scikit-learn's on `X.astype(np.float64)`. `y` and `groups` keep their dtype, so the classes are the user's
    own (`classes_` of integers stays integers, of strings stays strings)."""
    if not content.startswith(b"PK"):
        raise DatasetError(
            "the file is not an .npz archive (a NumPy zip made by np.savez)"
            + ("; it is a single .npy array" if content.startswith(b"\x93NUMPY") else "")
        )
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as npz:
            names = list(npz.files)
            unknown = [n for n in names if n not in NPZ_ARRAYS]
            if unknown:
                raise DatasetError(
                    f"unknown array {unknown[0]!r} in the archive; an .npz holds X, y and optionally groups ({_HOW})"
                )
            for required in ("X", "y"):
                if required not in names:
                    raise DatasetError(f"the archive has no array {required!r}; {_HOW}")
            headers = _npz_headers(npz.zip, names)
            arrays = {name: npz[name] for name in headers}
    except DatasetError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's own refusal, should a header check have missed one
            raise DatasetError("an array holds Python objects (dtype object), which are not loaded") from None
        raise DatasetError(f"the .npz archive cannot be read: {exc}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise DatasetError(f"the .npz archive cannot be read: {exc or type(exc).__name__}") from None
    X = arrays["X"]
    if X.ndim != 2:
        raise DatasetError(f"X must be 2-D (rows × features); got shape {X.shape}")
    if X.dtype.kind not in _NUMERIC:
        raise DatasetError(f"X has dtype {X.dtype}; features must be numbers (bool, integer or float)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DatasetError(f"X is empty (shape {X.shape}); it needs at least one row and one feature")
    X = np.asarray(X, dtype=np.float64)
    if np.isinf(X).any():  # NaN is a missing value, for the estimators that take them (as scikit-learn allows)
        row, col = (int(i) for i in np.argwhere(np.isinf(X))[0])
        raise DatasetError(f"X has an infinite value at row {row}, column {col} ({float(X[row, col])})")
    y = _npz_column("y", arrays["y"], X.shape[0], _NUMERIC + "U")
    groups = arrays.get("groups")
    if groups is not None:
        groups = _npz_column("groups", groups, X.shape[0], _NUMERIC + "U")
    return Data(X=X, y=y, feature_names=[f"x{i}" for i in range(X.shape[1])], target_name="y", groups=groups)


def read_npz_file(path: str | Path) -> Data:
    return read_npz(Path(path).read_bytes())

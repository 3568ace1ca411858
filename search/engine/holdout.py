"""The held-out split: rows set aside before anything else, as `train_test_split` sets them aside.

`"holdout": {"test_size": 0.25, "random_state": 0, "stratify": false}` in a spec splits the data with
`train_test_split(X, y, test_size=…, random_state=…, stratify=y if stratify else None)`. Cross-validation, the
leaderboard and the refit see the training part only; the refit model is scored on the held-out part with every
scorer of the search. Every process that loads the data (runner, web check, refit) splits it the same way, so the
rows are the same everywhere (a seeded split, `random_state` null refused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sklearn.model_selection import train_test_split

from .datasets import Data
from .errors import SpecError

HOLDOUT_KEYS = {"test_size", "random_state", "stratify"}


@dataclass(frozen=True)
class HoldoutSpec:
    test_size: float | int = 0.25  # a fraction in (0, 1) or a number of rows
    random_state: int = 0
    stratify: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"test_size": self.test_size, "random_state": self.random_state, "stratify": self.stratify}


def parse_holdout(value: Any) -> HoldoutSpec:
    """`holdout` of a spec (shape and types); whether the rows suffice is `split`'s check."""
    if value is True:
        value = {}
    if not isinstance(value, dict):
        example = '{"test_size": 0.25, "random_state": 0, "stratify": false}'
        raise SpecError("holdout", f"expected an object such as {example}, got {value!r}")
    unknown = sorted(set(value) - HOLDOUT_KEYS)
    if unknown:
        raise SpecError(f"holdout.{unknown[0]}", f"unknown key; allowed keys: {', '.join(sorted(HOLDOUT_KEYS))}")
    hs = HoldoutSpec(**value)
    size = hs.test_size
    fraction = isinstance(size, float) and math.isfinite(size) and 0 < size < 1
    rows = isinstance(size, int) and not isinstance(size, bool) and size >= 1
    if not (fraction or rows):
        raise SpecError(
            "holdout.test_size",
            f"expected a fraction between 0 and 1 (such as 0.25) or a number of rows of at least 1, got {size!r}",
        )
    seed = hs.random_state
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SpecError(
            "holdout.random_state",
            f"expected an integer between 0 and 2**32 - 1 (every machine must hold out the same rows), got {seed!r}",
        )
    if not isinstance(hs.stratify, bool):
        raise SpecError("holdout.stratify", f"expected true or false, got {hs.stratify!r}")
    return hs


def split(data: Data, hs: HoldoutSpec) -> tuple[Data, Data]:
    """(training part, held-out part), exactly as `train_test_split` returns them (a data set's `groups` split
    along with its rows: the same indices, whatever the number of arrays); SpecError when the data cannot be split
    so (too few rows, a class too small to stratify)."""
    arrays = [data.X, data.y] if data.groups is None else [data.X, data.y, data.groups]
    try:
        parts = train_test_split(
            *arrays, test_size=hs.test_size, random_state=hs.random_state, stratify=data.y if hs.stratify else None
        )
    except ValueError as exc:
        field = "holdout.stratify" if hs.stratify and "class" in str(exc) else "holdout.test_size"
        raise SpecError(field, f"cannot hold out {hs.test_size!r} of {data.n_samples} rows: {exc}") from None
    X_train, X_test, y_train, y_test = parts[:4]
    g_train, g_test = parts[4:6] if data.groups is not None else (None, None)
    return (
        Data(X=X_train, y=y_train, feature_names=data.feature_names, target_name=data.target_name, groups=g_train),
        Data(X=X_test, y=y_test, feature_names=data.feature_names, target_name=data.target_name, groups=g_test),
    )


def split_from_dict(data: Data, holdout: dict[str, Any] | None) -> tuple[Data, Data | None]:
    """`split` for a stored or job's `holdout` dict; (data, None) without one."""
    if not holdout:
        return data, None
    return split(data, HoldoutSpec(**holdout))

"""A spec's `cv`: parsed into a `CVSpec` (shape and types), checked against the data, and identified for fit keys.

Three forms, each the splitter `GridSearchCV` is given:
- `5` or `{"n_splits": 5, "shuffle": false, "random_state": null}`: `cv=5` ((Stratified)KFold), or its shuffled form;
- `{"n_splits": 5, "groups": true}`: `cv=GroupKFold(5)`, fitted with `groups=` the data set's `groups` array;
- `{"splits": [[train, test], …]}`: `cv=` that list, the folds exactly as given, in order (one fold is enough, as
  for scikit-learn). The indices are row numbers of what cross-validation sees (after a `holdout`); whether they
  are in range is known once the data is loaded (`check_data`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .datasets import Data
from .errors import SpecError

CV_KEYS = {"n_splits", "shuffle", "random_state", "splits", "groups"}
# Indices over all folds of explicit splits: the spec holds them as Python ints (about 36 bytes each, plus the
# JSON they came in), so this bounds what one spec can make the web process and every runner hold.
MAX_SPLIT_INDICES = 10_000_000

Fold = tuple[tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class CVSpec:
    n_splits: int = 5  # with `splits`: how many folds they are
    shuffle: bool = False
    random_state: int | None = None
    splits: tuple[Fold, ...] | None = None  # explicit (train indices, test indices) per fold
    groups: bool = False  # GroupKFold(n_splits) over the data set's groups

    def to_dict(self) -> dict[str, Any]:
        if self.splits is not None:
            return {"splits": [[list(train), list(test)] for train, test in self.splits]}
        out: dict[str, Any] = {"n_splits": self.n_splits, "shuffle": self.shuffle, "random_state": self.random_state}
        if self.groups:  # only when set: the dicts of every other search (and their fit keys) stay as they were
            out["groups"] = True
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CVSpec:
        """A stored (already validated) `to_dict()`, without checking it again."""
        if d.get("splits") is not None:
            splits = tuple((tuple(train), tuple(test)) for train, test in d["splits"])
            return cls(n_splits=len(splits), splits=splits)
        return cls(
            n_splits=d.get("n_splits", 5), shuffle=bool(d.get("shuffle")), random_state=d.get("random_state"),
            groups=bool(d.get("groups")),
        )  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_cv(value: Any) -> CVSpec:
    """`cv` of a spec (shape and types); whether the data fits it is `check_data`'s check."""
    if _is_int(value):
        value = {"n_splits": value}
    if not isinstance(value, dict):
        raise SpecError(
            "cv",
            f"expected a number of folds or an object with n_splits (or splits: [[train, test], …]), got {value!r}",
        )
    unknown = sorted(set(value) - CV_KEYS)
    if unknown:
        raise SpecError(
            f"cv.{unknown[0] or repr(unknown[0])}", f"unknown key; allowed keys: {', '.join(sorted(CV_KEYS))}"
        )
    if "splits" in value:
        others = sorted(set(value) - {"splits"})
        if others:
            raise SpecError(
                f"cv.{others[0]}",
                "cannot be given with splits: explicit splits are the folds (n_splits, shuffle, random_state and "
                "groups only apply to a splitter)",
            )
        splits = parse_splits(value["splits"])
        return CVSpec(n_splits=len(splits), splits=splits)
    n_splits = value.get("n_splits", 5)
    shuffle = value.get("shuffle", False)
    random_state = value.get("random_state")
    groups = value.get("groups", False)
    if not _is_int(n_splits) or n_splits < 2:
        raise SpecError("cv.n_splits", f"expected an integer of at least 2, got {n_splits!r}")
    if not isinstance(shuffle, bool):
        raise SpecError("cv.shuffle", f"expected true or false, got {shuffle!r}")
    if random_state is not None and (not _is_int(random_state) or not 0 <= random_state < 2**32):
        raise SpecError("cv.random_state", f"expected an integer between 0 and 2**32 - 1 or null, got {random_state!r}")
    if random_state is not None and not shuffle:
        raise SpecError("cv.random_state", "has no effect unless shuffle is true; remove it or set shuffle")
    if not isinstance(groups, bool):
        raise SpecError("cv.groups", f"expected true or false, got {groups!r}")
    if groups and shuffle:
        raise SpecError(
            "cv.groups", "the folds follow the data set's groups (GroupKFold, not shuffled); remove shuffle"
        )
    if shuffle and random_state is None:
        random_state = 0  # a shuffled split must be the same in every worker process
    return CVSpec(n_splits=n_splits, shuffle=shuffle, random_state=random_state, groups=groups)


def parse_splits(value: Any) -> tuple[Fold, ...]:
    """`cv.splits`: a non-empty list of [train, test] pairs of non-empty lists of distinct non-negative integers,
    no row in both parts of a fold, at most MAX_SPLIT_INDICES indices in all (counted before any is looked at)."""
    example = "[[[0, 1, 2], [3, 4]], [[3, 4], [0, 1, 2]]]"
    if not isinstance(value, list):
        raise SpecError("cv.splits", f"expected a list of [train_indices, test_indices] pairs such as {example}")
    if not value:
        raise SpecError("cv.splits", "is empty; give at least one [train_indices, test_indices] pair")
    total = 0
    for i, fold in enumerate(value):
        if not (isinstance(fold, list) and len(fold) == 2 and all(isinstance(part, list) for part in fold)):
            got = f"a list of {len(fold)}" if isinstance(fold, list) else repr(fold)[:60]
            raise SpecError(f"cv.splits[{i}]", f"expected a pair [train_indices, test_indices] of lists, got {got}")
        total += len(fold[0]) + len(fold[1])
    if total > MAX_SPLIT_INDICES:
        raise SpecError(
            "cv.splits", f"the folds hold {total:,} indices in all; the limit is {MAX_SPLIT_INDICES:,} (fewer folds)"
        )
    return tuple(_parse_fold(fold, i) for i, fold in enumerate(value))


def _parse_fold(fold: list[list[Any]], i: int) -> Fold:
    where = f"cv.splits[{i}]"
    parts = []
    for part, what in zip(fold, ("train", "test"), strict=True):
        if not part:
            raise SpecError(where, f"the {what} part is empty; each fold needs at least one train and one test row")
        if not all(map(_is_row, part)):
            bad = next(v for v in part if not _is_row(v))
            raise SpecError(where, f"the {what} part holds {bad!r}; indices are row numbers (integers from 0)")
        seen = set(part)
        if len(seen) != len(part):
            raise SpecError(where, f"the {what} part names row {_first_repeat(part)} more than once")
        parts.append(seen)
    common = parts[0] & parts[1]
    if common:
        raise SpecError(where, f"row {min(common)} is in both the train and the test part")
    return tuple(fold[0]), tuple(fold[1])


def _is_row(value: Any) -> bool:
    return type(value) is int and value >= 0  # not bool, which is an int to isinstance


def _first_repeat(values: list[int]) -> int:
    seen: set[int] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    raise AssertionError("no repeat")  # only called when there is one


def check_data(cv: CVSpec, data: Data, *, held_out: int = 0) -> None:
    """The CV against the rows it sees (`data`: after a holdout of `held_out` rows): every explicit index a row of
    it; for groups, a `groups` array with at least `n_splits` distinct groups. Raises SpecError."""
    if cv.splits is not None:
        n = data.n_samples
        for i, (train, test) in enumerate(cv.splits):
            top = max(map(max, (train, test)))
            if top >= n:
                rows = f"{n} rows (0 to {n - 1})" if n else "no rows"
                seen = f"cross-validation sees {rows}" + (f", after {held_out} held out" if held_out else "")
                raise SpecError("cv.splits", f"fold {i} names row {top}, but {seen}")
        return
    if cv.groups:
        if data.groups is None:
            raise SpecError(
                "cv.groups",
                "this data set has no groups; upload an .npz with a groups array (one label per row), or remove groups",
            )
        n_groups = len(np.unique(data.groups))
        if cv.n_splits > n_groups:
            raise SpecError(
                "cv.n_splits",
                f"GroupKFold({cv.n_splits}) needs at least {cv.n_splits} distinct groups; the data set has {n_groups}"
                + (f" after {held_out} rows held out" if held_out else ""),
            )


def splits_digest(splits: Any) -> str:
    """sha256 of explicit splits as JSON lists (`CVSpec.to_dict()["splits"]`): what fit keys hold instead of them."""
    canonical = json.dumps([[list(train), list(test)] for train, test in splits], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cv_identity(cv: Mapping[str, Any]) -> dict[str, Any]:
    """A job's `cv` dict as keys hold it: explicit splits replaced by their digest, everything else as it is."""
    if cv.get("splits") is None:
        return dict(cv)
    return {**{k: v for k, v in cv.items() if k != "splits"}, "splits_sha256": splits_digest(cv["splits"])}

"""Successive halving as `HalvingGridSearchCV` and `HalvingRandomSearchCV` do it, one round at a time.

`schedule` reproduces scikit-learn's plan of rounds (resources and candidates per round) from the
data set's size; `keep` picks the candidates that go on with scikit-learn's own `_top_k`; the runner
subsamples each fold with its `_SubsampleMetaSplitter` when the resource is `n_samples`. Using these
private helpers of the pinned scikit-learn keeps the kept candidates and scores identical to
`HalvingGridSearchCV`'s; `tests/system/test_oracle_strategies.py` fails if a new version changes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import ceil, floor, log
from typing import Any

import numpy as np

HALVING_KEYS = {"factor", "resource", "min_resources", "max_resources", "aggressive_elimination", "n_candidates"}
# scikit-learn takes any factor above 1, but the rounds grow as log(candidates) / log(factor): a factor of
# 1.0000000000000002 asks 3 candidates for 5 × 10^15 rounds (the schedule filled the memory), and 1.01 runs
# about 100 times the first round's fits.
MIN_FACTOR = 1.1
MAX_ROUNDS = 100  # rounds of one halving search (factor 1.1 reaches it at about 12,500 candidates)


@dataclass(frozen=True)
class HalvingSpec:
    factor: float = 3
    resource: str = "n_samples"
    min_resources: int | str = "exhaust"  # an int, "exhaust" or "smallest"
    max_resources: int | str = "auto"  # an int, or "auto" (= the number of samples)
    aggressive_elimination: bool = False
    # HalvingRandomSearchCV only (candidates sampled from param_distributions): an int or "exhaust"
    n_candidates: int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "factor": self.factor,
            "resource": self.resource,
            "min_resources": self.min_resources,
            "max_resources": self.max_resources,
            "aggressive_elimination": self.aggressive_elimination,
        }
        if self.n_candidates is not None:
            out["n_candidates"] = self.n_candidates
        return out

    def sample_size(self, *, n_samples: int | None, n_splits: int, n_classes: int | None) -> int | None:
        """How many candidates `HalvingRandomSearchCV` samples for round 0 (`_generate_candidate_params`):
        `n_candidates`, or for "exhaust" max_resources // min_resources; None when that needs the data set's
        size (`n_samples` None) or this is not a sampled search."""
        if self.n_candidates is None or isinstance(self.n_candidates, int):
            return self.n_candidates
        max_r = self.max_resources if isinstance(self.max_resources, int) else n_samples
        if max_r is None:
            return None
        return max(1, max_r // _smallest(self, n_splits, n_classes))


@dataclass(frozen=True)
class Schedule:
    """The rounds: `n_resources[i]` samples (or budget) for `n_candidates[i]` candidates."""

    min_resources: int
    max_resources: int
    n_resources: list[int]
    n_candidates: list[int]
    n_required_iterations: int
    n_possible_iterations: int

    @property
    def n_iterations(self) -> int:
        return len(self.n_resources)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schedule:
        return cls(**d)


class ScheduleError(ValueError):
    pass


class TooManyRounds(ScheduleError):
    """More rounds than MAX_ROUNDS: the factor is too close to 1 for this many candidates."""


def required_rounds(n_candidates: int, factor: float) -> int:
    """`n_required_iterations_` of scikit-learn's halving search, in closed form: 1 + floor(log(n, factor))."""
    return 1 + floor(log(n_candidates, factor))


def check_rounds(n_candidates: int, factor: float) -> int:
    """The rounds `n_candidates` need at `factor` (what `schedule` builds at most); TooManyRounds above
    MAX_ROUNDS."""
    n = required_rounds(n_candidates, factor)
    if n > MAX_ROUNDS:
        raise TooManyRounds(
            f"factor {factor} over {n_candidates:,} candidates makes {n:,} rounds; the limit is {MAX_ROUNDS}. "
            "Use a larger factor or fewer candidates."
        )
    return n


def _smallest(hs: HalvingSpec, n_splits: int, n_classes: int | None) -> int:
    """`min_resources_` before "exhaust" raises it: the given integer, else 2 rows per class and fold (or 1)."""
    if isinstance(hs.min_resources, int):
        return hs.min_resources
    return n_splits * 2 * (n_classes or 1) if hs.resource == "n_samples" else 1


def schedule(hs: HalvingSpec, *, n_candidates: int, n_samples: int, n_splits: int, n_classes: int | None) -> Schedule:
    """`BaseSuccessiveHalving._check_input_parameters` + `_run_search`'s arithmetic, without fitting.

    `n_classes` is the number of classes for a classifier, None for a regressor."""
    min_r: float = _smallest(hs, n_splits, n_classes)
    max_r = n_samples if hs.max_resources == "auto" else hs.max_resources
    assert isinstance(max_r, int)
    if min_r > max_r:
        raise ScheduleError(
            f"min_resources={min_r} is greater than max_resources={max_r}"
            + (f" (the data set has {n_samples} rows)" if hs.resource == "n_samples" else "")
        )
    if min_r <= 0:
        raise ScheduleError("min_resources=0: the data set is empty")
    n_required = check_rounds(n_candidates, hs.factor)  # before any list is built
    if hs.min_resources == "exhaust":
        min_r = max(min_r, max_r // hs.factor ** (n_required - 1))
    n_possible = 1 + floor(log(max_r // min_r, hs.factor))
    n_iterations = n_required if hs.aggressive_elimination else min(n_possible, n_required)
    resources, candidates, n = [], [], n_candidates
    for itr in range(n_iterations):
        power = max(0, itr - n_required + n_possible) if hs.aggressive_elimination else itr
        resources.append(min(int(hs.factor**power * min_r), max_r))
        candidates.append(n)
        n = ceil(n / hs.factor)
    return Schedule(int(min_r), int(max_r), resources, candidates, n_required, n_possible)


def keep(params: Sequence[dict[str, Any]], means: Sequence[float | None], k: int) -> list[dict[str, Any]]:
    """The `k` candidates of a round that go on, in scikit-learn's order (worst kept first)."""
    from sklearn.model_selection._search_successive_halving import _top_k

    results = {
        "iter": [0] * len(params),
        "mean_test_score": [np.nan if m is None else m for m in means],
        "params": list(params),
    }
    return [dict(p) for p in _top_k(results, k, 0)]


def round_params(params: dict[str, Any], hs: HalvingSpec, n_resources: int) -> dict[str, Any]:
    """A candidate's parameters in a round: the budget parameter set to the round's resources."""
    if hs.resource == "n_samples":
        return dict(params)
    out = dict(params)
    out[hs.resource] = n_resources
    return out


def subsample_splits(
    splits: Sequence[tuple[np.ndarray, np.ndarray]], fraction: float, random_state: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each fold's train and test indices subsampled as `_SubsampleMetaSplitter` does."""
    from sklearn.model_selection._search_successive_halving import _SubsampleMetaSplitter

    class _Fixed:
        def split(self, *args: Any, **kwargs: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            yield from splits

    meta = _SubsampleMetaSplitter(base_cv=_Fixed(), fraction=fraction, subsample_test=True, random_state=random_state)
    return list(meta.split(None, None))


def best_index(iterations: Sequence[int], means: Sequence[float | None]) -> int | None:
    """`BaseSuccessiveHalving._select_best_index`: the best of the last round (None if all failed)."""
    last = max(iterations)
    idx = [i for i, it in enumerate(iterations) if it == last]
    scores = np.array([np.nan if means[i] is None else means[i] for i in idx], dtype=float)
    if np.isnan(scores).all():
        return None
    return idx[int(np.nanargmax(scores))]

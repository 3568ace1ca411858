"""Random search: `param_distributions` as JSON → scipy.stats distributions → `ParameterSampler`.

A value is either a list (sampled uniformly, as `RandomizedSearchCV` does) or an object naming a
`scipy.stats` distribution with its arguments::

    {"C": {"distribution": "loguniform", "args": [0.001, 1000]}, "kernel": ["rbf", "linear"]}

Only names that resolve to a `scipy.stats` distribution object are accepted; nothing is imported by
path or evaluated. Sampling uses scikit-learn's own `ParameterSampler`, so the candidates equal
`RandomizedSearchCV`'s for the same seed; numpy scalars are turned into plain JSON numbers (exact).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.stats
from sklearn.model_selection import ParameterSampler

DISTRIBUTION_KEYS = {"distribution", "args", "kwargs"}
EXAMPLES = '{"distribution": "loguniform", "args": [0.001, 1000]} or {"distribution": "randint", "args": [1, 20]}'


class DistributionError(ValueError):
    """A bad distribution; the message says what came in and what is allowed."""


def distribution_names() -> list[str]:
    """Every `scipy.stats` continuous or discrete distribution, by the name scipy exports it under."""
    return sorted(
        name
        for name in dir(scipy.stats)
        if not name.startswith("_")
        and isinstance(getattr(scipy.stats, name), (scipy.stats.rv_continuous, scipy.stats.rv_discrete))
    )


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DistributionError(f"{where}: expected a finite number, got {value!r}")
    return value


def freeze(value: Mapping[str, Any]) -> Any:
    """`{"distribution": "uniform", "args": [0, 1]}` → `scipy.stats.uniform(0, 1)`, checked by one draw."""
    unknown = sorted(set(value) - DISTRIBUTION_KEYS)
    if unknown:
        allowed = ", ".join(sorted(DISTRIBUTION_KEYS))
        raise DistributionError(f"unknown key {unknown[0]!r}; a distribution has {allowed}")
    name = value.get("distribution")
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise DistributionError(f"expected a scipy.stats distribution name such as {EXAMPLES}, got {name!r}")
    dist = getattr(scipy.stats, name, None)
    if not isinstance(dist, (scipy.stats.rv_continuous, scipy.stats.rv_discrete)):
        import difflib

        close = difflib.get_close_matches(name, distribution_names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DistributionError(f"{name!r} is not a scipy.stats distribution.{hint}")
    args, kwargs = value.get("args", []), value.get("kwargs", {})
    if not isinstance(args, list):
        raise DistributionError(f"args: expected a list of numbers, got {args!r}")
    if not isinstance(kwargs, dict):
        raise DistributionError(f"kwargs: expected an object of numbers such as {{'loc': 0}}, got {kwargs!r}")
    args = [_number(a, f"args[{i}]") for i, a in enumerate(args)]
    kwargs = {str(k): _number(v, f"kwargs.{k}") for k, v in kwargs.items()}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            frozen = dist(*args, **kwargs)
            draw = frozen.rvs(random_state=0)
    except (TypeError, ValueError) as exc:
        raise DistributionError(f"{name}{tuple(args)}: {str(exc).splitlines()[0]}") from None
    if not np.all(np.isfinite(draw)):
        raise DistributionError(f"{name}{tuple(args)} draws non-finite values; check its arguments")
    return frozen


def to_sampler_input(distributions: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """JSON distributions → what `ParameterSampler` takes (lists kept, objects frozen)."""
    return [{k: freeze(v) if isinstance(v, dict) else list(v) for k, v in d.items()} for d in distributions]


def _plain(value: Any) -> Any:
    """numpy scalar → the Python number or string it holds (an exact conversion)."""
    return value.item() if isinstance(value, np.generic) else value


def sample(distributions: tuple[dict[str, Any], ...], n_iter: int, random_state: int | None) -> list[dict[str, Any]]:
    """`RandomizedSearchCV`'s candidates, in its order, as JSON-ready dicts."""
    sampler = ParameterSampler(to_sampler_input(distributions), n_iter, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "n_iter is larger than the grid": sklearn runs the grid
        return [{k: _plain(v) for k, v in params.items()} for params in sampler]

"""Random search: `param_distributions` as JSON → scipy.stats distributions → `ParameterSampler`.

A value is either a list (sampled uniformly, as `RandomizedSearchCV` does) or an object naming a
`scipy.stats` distribution with its arguments::

    {"C": {"distribution": "loguniform", "args": [0.001, 1000]}, "kernel": ["rbf", "linear"]}

Only the `scipy.stats` distributions in `ALLOWED` are accepted (ones that draw a value in tens of
microseconds whatever their arguments; `studentized_range` takes about 60 ms a draw); nothing is imported
by path or evaluated. Sampling uses scikit-learn's own `ParameterSampler`, so the candidates equal
`RandomizedSearchCV`'s for the same seed; numpy scalars are turned into plain JSON numbers (exact). It stops
after `SAMPLE_SECONDS` (`SamplingTooSlow`), so a large `n_iter` never outlasts a web request.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.stats
from sklearn.model_selection import ParameterSampler

DISTRIBUTION_KEYS = {"distribution", "args", "kwargs"}
EXAMPLES = '{"distribution": "loguniform", "args": [0.001, 1000]} or {"distribution": "randint", "args": [1, 20]}'


# Distributions that sample fast: one draw measured at 10-100 µs on 2 busy cores, also at extreme arguments
# (scipy's `_distr_params` examples and 1e-300 / 1e300 shapes). Left out: the slow ones (studentized_range
# 60-90 ms a draw, ksone 3 ms, gausshyper 1.6 ms, …) and those whose time depends on their arguments (zipf
# near 1: 7 ms; truncnorm in a tail: 0.3 ms).
ALLOWED = (
    "bernoulli", "beta", "binom", "cauchy", "chi2", "expon", "gamma", "geom", "gumbel_r", "halfcauchy", "halfnorm",
    "laplace", "logistic", "lognorm", "loguniform", "nbinom", "norm", "pareto", "poisson", "powerlaw", "randint",
    "rayleigh", "reciprocal", "t", "triang", "truncexpon", "uniform", "weibull_min",
)  # fmt: skip
SAMPLE_SECONDS = 1.0  # drawing the candidates of one spec stops after this long


class DistributionError(ValueError):
    """A bad distribution; the message says what came in and what is allowed."""


class SamplingTooSlow(DistributionError):
    """Drawing the candidates took longer than SAMPLE_SECONDS; `drawn` of `n_iter` were drawn."""

    def __init__(self, drawn: int, n_iter: int, seconds: float) -> None:
        super().__init__(
            f"drawing {n_iter:,} candidates stopped after {seconds:g} s with {drawn:,} drawn; ask for fewer "
            "candidates, or split the search into several"
        )
        self.drawn = drawn
        self.n_iter = n_iter


def distribution_names() -> list[str]:
    """The `scipy.stats` distributions a spec may name (`ALLOWED`, each one a distribution object here)."""
    return [
        name
        for name in ALLOWED
        if isinstance(getattr(scipy.stats, name, None), (scipy.stats.rv_continuous, scipy.stats.rv_discrete))
    ]


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
    if name not in distribution_names():
        raise DistributionError(
            f"{name!r} samples too slowly to draw candidates from; use one of {', '.join(distribution_names())}"
        )
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


def sample(
    distributions: tuple[dict[str, Any], ...], n_iter: int, random_state: int | None, seconds: float | None = None
) -> list[dict[str, Any]]:
    """`RandomizedSearchCV`'s candidates, in its order, as JSON-ready dicts. SamplingTooSlow once drawing
    them has taken `seconds` (default SAMPLE_SECONDS)."""
    limit = SAMPLE_SECONDS if seconds is None else seconds
    if all(isinstance(v, list) for d in distributions for v in d.values()):  # sampled from the grid they make
        size = sum(math.prod(len(v) for v in d.values()) for d in distributions)  # len() of ParameterGrid
        if size > sys.maxsize:  # scikit-learn's sample_without_replacement would raise OverflowError
            raise DistributionError(
                f"the lists make a grid of {size:.3g} combinations, more than can be sampled from; give a "
                "parameter a distribution instead of a list"
            )
    sampler = ParameterSampler(to_sampler_input(distributions), n_iter, random_state=random_state)
    out: list[dict[str, Any]] = []
    end = time.monotonic() + limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "n_iter is larger than the grid": sklearn runs the grid
        for params in sampler:
            out.append({k: _plain(v) for k, v in params.items()})
            if time.monotonic() > end and len(out) < n_iter:
                raise SamplingTooSlow(len(out), n_iter, limit)
    return out

"""A rough relative cost for each candidate, used only to dispatch the slowest fits first.

GridSearchCV dispatches in grid order, so a slow candidate that comes last leaves every other core
idle while it finishes (the tail). Starting the most expensive fits first (longest processing time
first) keeps the tail short. The estimate only needs to order candidates, not predict seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Parameters whose value grows the work roughly in proportion (or inverse proportion).
GROWS = ("n_estimators", "max_iter", "n_iter", "n_components", "max_leaf_nodes", "n_neighbors", "degree")
SHRINKS = ("min_samples_split", "min_samples_leaf", "tol", "learning_rate", "alpha", "min_child_samples")
UNBOUNDED_DEPTH = 30.0  # max_depth=None grows trees until pure: treat as deep


def _base(name: str) -> str:
    return name.rsplit("__", 1)[-1]


def _factor(name: str, value: Any) -> float:
    key = _base(name)
    if key == "max_depth":
        return UNBOUNDED_DEPTH if value is None else float(max(1, value)) if isinstance(value, (int, float)) else 1.0
    if key == "hidden_layer_sizes" and isinstance(value, (list, tuple)):
        return float(sum(v for v in value if isinstance(v, (int, float)))) or 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return 1.0
    if key in GROWS:
        return float(value)
    if key in SHRINKS:
        return 1.0 / float(value)
    if key == "C":  # SVMs and linear models converge more slowly with weaker regularisation
        return 1.0 + math.log10(1.0 + float(value))
    return 1.0


def relative_cost(params: Mapping[str, Any]) -> float:
    """Product of per-parameter factors; 1.0 when nothing known varies."""
    cost = 1.0
    for name, value in params.items():
        cost *= _factor(name, value)
    return cost

"""A rough relative cost for each candidate: the order fits are dispatched in (slowest first), the threads a
forest's fit gets on many cores (engine.schedule), the split of a search into units of equal cost, and the
pilot's seconds per unit of cost (services.estimates).

GridSearchCV dispatches in grid order, so a slow candidate that comes last leaves every other core
idle while it finishes (the tail). Starting the most expensive fits first (longest processing time
first) keeps the tail short. Only ratios matter, never seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Parameters whose value grows the work roughly in proportion (or inverse proportion).
GROWS = ("n_estimators", "max_iter", "n_iter", "n_components", "max_leaf_nodes", "n_neighbors", "degree")
SHRINKS = ("tol", "learning_rate", "min_child_samples")
# Larger leaves stop a tree a little earlier: measured on the reference grid (bench/fit_costs.py) a forest with
# min_samples_split 5 costs 0.95-1.0 times one with 2, so these weigh 1 + 0.1 / value, not 1 / value.
LEAF_SIZE = ("min_samples_split", "min_samples_leaf")
# A tree's cost saturates with depth (every level sees every row until the leaves are pure): measured 0.75 at
# max_depth 5 and 0.98 at 10 of max_depth None's, which 1 - exp(-depth / DEPTH_SCALE) follows.
DEPTH_SCALE = 3.5


def _base(name: str) -> str:
    return name.rsplit("__", 1)[-1]


def _factor(name: str, value: Any) -> float:
    key = _base(name)
    if key == "max_depth":
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return 1.0
        return 1.0 - math.exp(-max(1.0, float(value)) / DEPTH_SCALE)
    if key == "hidden_layer_sizes" and isinstance(value, (list, tuple)):
        return float(sum(v for v in value if isinstance(v, (int, float)))) or 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return 1.0
    if key in GROWS:
        return float(value)
    if key in SHRINKS:
        return 1.0 / float(value)
    if key in LEAF_SIZE:
        return 1.0 + 0.1 / float(value)
    if key == "C":  # SVMs and linear models converge more slowly with weaker regularisation
        return 1.0 + math.log10(1.0 + float(value))
    if key == "alpha":  # the same, the other way round; not 1 / alpha: a ridge solve costs the same at every
        # alpha, and over geomspace(1e-4, 1e4) 1 / alpha put a whole search's estimated cost in its first units
        return 1.0 + math.log10(1.0 + 1.0 / float(value))
    return 1.0


def relative_cost(params: Mapping[str, Any]) -> float:
    """Product of per-parameter factors; 1.0 when nothing known varies."""
    cost = 1.0
    for name, value in params.items():
        cost *= _factor(name, value)
    return cost

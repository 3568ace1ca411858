"""An estimator of the registry described for a client: its tunable parameters with their defaults, its task
and the scorers that fit it. The new-search form's JSON endpoint and the REST API both answer with this."""

from __future__ import annotations

import json
import math
from typing import Any

from . import registry
from .validate import scorers_for


def jsonable(value: Any) -> Any:
    """A default as JSON: numbers, strings, booleans, null; anything else as its repr (shown, not sent back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def describe(names: list[str]) -> dict[str, Any]:
    """`["StandardScaler", "SVC"]` (a pipeline) or `["SVC"]`: raises KeyError, with the closest names, for a
    name outside the registry."""
    infos = [registry.lookup(s) for s in names]
    estimator = registry.build(tuple((i.name, i.module) for i in infos))
    params = estimator.get_params(deep=True)
    if len(infos) > 1:  # a pipeline: only the steps' own parameters are worth tuning
        params = {k: v for k, v in params.items() if "__" in k}
    task = "classification" if infos[-1].kind == "classifier" else "regression"
    return {
        "name": ">".join(names), "task": task, "steps": [i.name for i in infos],
        "params": [{"name": k, "default": jsonable(v)} for k, v in sorted(params.items())],
        "scorers": scorers_for(task),
    }  # fmt: skip

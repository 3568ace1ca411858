"""Parameter values as JSON: what a Fanout spec can carry, and a clear reason for what it cannot."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SENDABLE = "only numbers, strings, booleans, None and lists of them"


class Refused(Exception):
    """A value that cannot be sent; the message says why. Callers turn it into a NotSendableError that
    names the parameter."""


def json_value(value: Any) -> Any:
    """A parameter value as the JSON value the server receives: numpy scalars → Python numbers, tuples and
    arrays → lists. Raises `Refused` for anything else (objects, callables, NaN and infinity)."""
    from sklearn.base import BaseEstimator

    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise Refused(f"{number!r} cannot be sent (JSON has no NaN or infinity)")
        return number
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) and value.dtype != object else list(value)
        return [json_value(v) for v in items]
    if isinstance(value, BaseEstimator):
        raise Refused(
            f"an estimator instance ({type(value).__name__}) cannot be sent; Fanout builds estimators from its "
            "registry by name, so run one search per estimator"
        )
    if isinstance(value, type):
        raise Refused(f"a class ({value.__qualname__}) cannot be sent; {SENDABLE}")
    if callable(value):
        what = "a lambda" if getattr(value, "__name__", "") == "<lambda>" else f"a callable ({_label(value)})"
        raise Refused(f"{what} cannot be sent; {SENDABLE}")
    if isinstance(value, Mapping):
        raise Refused(f"a dict cannot be sent as a parameter value; {SENDABLE}")
    raise Refused(f"a {type(value).__name__} object cannot be sent; {SENDABLE}")


def _label(value: Any) -> str:
    return str(getattr(value, "__qualname__", None) or type(value).__name__)


def has_non_list_sequence(value: Any) -> bool:
    """True when converting `value` to JSON turns a tuple or an array into a list somewhere."""
    if isinstance(value, (tuple, np.ndarray)):
        return True
    return isinstance(value, list) and any(has_non_list_sequence(v) for v in value)


def _number(value: Any, where: str) -> float | int:
    converted = json_value(value)
    if isinstance(converted, bool) or not isinstance(converted, (int, float)):
        raise Refused(f"{where} must be a number, got {value!r}")
    return converted


def distribution(dist: Any) -> dict[str, Any]:
    """A frozen `scipy.stats` distribution → `{"distribution": name, "args": [...], "kwargs": {...}}`.

    Only a distribution that is scipy.stats' own object of that name is sent (a user subclass named `norm`
    is refused), since the server freezes it again by name. An unfrozen one (`scipy.stats.norm`) is refused too.
    """
    import scipy.stats

    gen = getattr(dist, "dist", None)
    name = getattr(gen, "name", None)
    # Freezing copies the distribution object: its class must be the one scipy.stats has under that name.
    own = isinstance(name, str) and not name.startswith("_") and type(getattr(scipy.stats, name, None)) is type(gen)
    frozen = isinstance(gen, (scipy.stats.rv_continuous, scipy.stats.rv_discrete)) and hasattr(dist, "args")
    if not frozen or not own:
        raise Refused(
            f"only scipy.stats' own distributions, frozen (such as scipy.stats.loguniform(1e-3, 1e3)), can be "
            f"sent; {type(dist).__name__} is not one"
        )
    args = [_number(a, f"argument {i} of {name}") for i, a in enumerate(getattr(dist, "args", ()))]
    kwargs = {str(k): _number(v, f"argument {k!r} of {name}") for k, v in getattr(dist, "kwds", {}).items()}
    return {"distribution": name, "args": args, "kwargs": kwargs}


def freeze(value: Mapping[str, Any]) -> Any:
    """The inverse of `distribution`, for a spec read back from the server (`attach`)."""
    import scipy.stats

    name = value.get("distribution")
    gen = getattr(scipy.stats, name, None) if isinstance(name, str) and not name.startswith("_") else None
    if not isinstance(gen, (scipy.stats.rv_continuous, scipy.stats.rv_discrete)):
        raise ValueError(f"the server's spec names an unknown scipy.stats distribution {name!r}")
    return gen(*value.get("args", []), **value.get("kwargs", {}))

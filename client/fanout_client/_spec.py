"""A scikit-learn estimator, grid, distributions, scoring and cv → the parts of a Fanout spec.

Everything here runs before anything is uploaded and makes no request; what cannot be sent raises a
`NotSendableError` naming the parameter. A `Pipeline` is sent as its list of step classes: the server builds
it with `make_pipeline`, so its steps are named by their lower-cased class names, and `EstimatorSpec`
translates parameter keys between the user's step names and the server's (`clf__C` ↔ `svc__C`).
"""

from __future__ import annotations

import importlib
import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._errors import NotSendableError
from ._values import Refused, distribution, has_non_list_sequence, json_value

# An estimator's own parallelism is the server's to set (its runner sets it to 1, and a spec that sets it is
# refused): a non-default value is kept here and put back on the downloaded best_estimator_.
LOCAL_ONLY = ("n_jobs",)
PIPELINE_DEFAULTS = {"memory": None, "transform_input": None, "verbose": False}


@dataclass(frozen=True)
class EstimatorSpec:
    """An estimator as the server names it: its classes (one per pipeline step), its non-default parameters
    (server keys, JSON values), the parameters kept locally, and the step names (user's, server's)."""

    classes: tuple[type, ...]
    params: dict[str, Any] = field(default_factory=dict)
    local: dict[str, Any] = field(default_factory=dict)  # user keys → values not sent (LOCAL_ONLY, verbose)
    steps: tuple[tuple[str, str], ...] = ()  # (user's step name, server's step name); () for one estimator

    @property
    def names(self) -> list[str]:
        return [c.__name__ for c in self.classes]

    @property
    def single_step(self) -> bool:
        """A Pipeline of one step: sent as its estimator alone (a one-name spec is no pipeline on the server)."""
        return len(self.steps) == 1

    def spec_estimator(self) -> str | list[str]:
        return self.names if len(self.classes) > 1 else self.names[0]

    def to_server(self, key: str) -> str:
        if self.single_step:
            prefix = f"{self.steps[0][0]}__"
            return key.removeprefix(prefix) if key.startswith(prefix) else key
        return _rename(key, dict(self.steps))

    def to_user(self, key: str) -> str:
        if self.single_step:
            return f"{self.steps[0][0]}__{key}"
        return _rename(key, {server: user for user, server in self.steps})

    def reorders(self, keys: Iterable[str]) -> bool:
        """True when the server's names sort `keys` in another order than the user's names do."""
        keys = list(keys)
        return [self.to_server(k) for k in sorted(keys)] != sorted(self.to_server(k) for k in keys)


def _rename(key: str, names: Mapping[str, str]) -> str:
    step, sep, rest = key.partition("__")
    return f"{names[step]}__{rest}" if sep and step in names else key


def _same(a: Any, b: Any) -> bool:
    """Equal as a parameter value: NaN equals NaN, arrays compare element-wise, odd objects by identity."""
    if a is b:
        return True
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if type(a) is not type(b) and not (isinstance(a, numbers.Number) and isinstance(b, numbers.Number)):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else bool(a == b)
    except (TypeError, ValueError):
        return False


def _check_class(obj: Any, where: str) -> type:
    from sklearn.base import BaseEstimator

    cls = type(obj)
    if not isinstance(obj, BaseEstimator):
        raise NotSendableError(f"{where} should be a scikit-learn estimator, got {obj!r}")
    if not (cls.__module__ == "sklearn" or cls.__module__.startswith("sklearn.")):
        raise NotSendableError(
            f"{where} {cls.__module__}.{cls.__qualname__} cannot be sent to Fanout: it is not a scikit-learn "
            "class, and Fanout builds only the estimators of its registry (scikit-learn's own), by class name"
        )
    return cls


def _own_params(est: Any, prefix: str, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The non-default parameters of one estimator, (sent, kept locally); keys get `prefix`."""
    from sklearn.base import clone

    defaults = type(est)().get_params(deep=False)
    sent: dict[str, Any] = {}
    local: dict[str, Any] = {}
    for name, value in est.get_params(deep=False).items():
        if name in defaults and _same(value, defaults[name]):
            continue
        if name in LOCAL_ONLY:
            local[prefix + name] = value
            continue
        try:
            converted = json_value(value)
        except Refused as exc:
            raise NotSendableError(f"Parameter {name!r} of {where} cannot be sent to Fanout: {exc}") from None
        if has_non_list_sequence(value) and (reason := list_refused(clone(est), name, value, converted)):
            raise NotSendableError(f"Parameter {name!r} of {where} cannot be sent to Fanout: {reason}")
        sent[prefix + name] = converted
    return sent, local


def estimator_spec(estimator: Any) -> EstimatorSpec:
    """The estimator's classes and non-default parameters, checked to be scikit-learn's own."""
    from sklearn.pipeline import Pipeline, make_pipeline

    if type(estimator) is not Pipeline:
        if isinstance(estimator, Pipeline):
            _check_class(estimator, "estimator")
            raise NotSendableError(f"estimator: a subclass of Pipeline ({type(estimator).__name__}) cannot be sent")
        cls = _check_class(estimator, "estimator")
        sent, kept = _own_params(estimator, "", cls.__name__)
        return EstimatorSpec(classes=(cls,), params=sent, local=kept)
    user_names = [name for name, _ in estimator.steps]
    objs = [step for _, step in estimator.steps]
    for name, step in estimator.steps:
        if step is None or isinstance(step, str):
            raise NotSendableError(f"Pipeline step {name!r} ({step!r}) cannot be sent to Fanout: give an estimator")
        if isinstance(step, Pipeline):
            raise NotSendableError(f"Pipeline step {name!r} cannot be sent to Fanout: nested pipelines are not")
        _check_class(step, f"Pipeline step {name!r}:")
    local: dict[str, Any] = {}
    for key, default in PIPELINE_DEFAULTS.items():
        value = estimator.get_params(deep=False).get(key, default)
        if _same(value, default):
            continue
        if key != "verbose":
            raise NotSendableError(f"Parameter {key!r} of Pipeline cannot be sent to Fanout: only the default works")
        local[key] = value
    server_names = [name for name, _ in make_pipeline(*objs).steps] if len(objs) > 1 else [""]
    params: dict[str, Any] = {}
    for user, server, step in zip(user_names, server_names, objs, strict=True):
        prefix = f"{server}__" if server else ""
        sent, kept = _own_params(step, prefix, f"step {user!r} ({type(step).__name__})")
        params.update(sent)
        local.update({f"{user}__{k.removeprefix(prefix)}": v for k, v in kept.items()})
    steps = tuple(zip(user_names, server_names, strict=True))
    return EstimatorSpec(classes=tuple(type(o) for o in objs), params=params, local=local, steps=steps)


def list_refused(estimator: Any, key: str, value: Any, converted: Any) -> str | None:
    """Why the estimator refuses `converted` (the JSON list the server gets) where it takes `value` (a tuple
    or an array); None when it takes both, or refuses both (then the server's own message says why)."""

    def problem(v: Any) -> str | None:
        from sklearn.base import clone

        est = clone(estimator)
        try:
            est.set_params(**{key: v})
            for obj in [est, *(s for _, s in getattr(est, "steps", []))]:
                if hasattr(obj, "_validate_params"):
                    obj._validate_params()
        except (TypeError, ValueError) as exc:
            return str(exc)
        return None

    refused = problem(converted)
    if refused is None or problem(value) is not None:
        return None
    return f"{value!r} reaches the server as the JSON list {converted!r}, which is refused: {refused}"


def check_registry(spec: EstimatorSpec, registry: Sequence[Mapping[str, Any]]) -> None:
    """Every class must be in the server's registry (`GET /estimators`) by name, and be the very class its
    public module holds (a user class named `SVC` is refused)."""
    modules = {str(e["name"]): str(e["module"]) for e in registry}
    for cls in spec.classes:
        module = modules.get(cls.__name__)
        if module is None:
            raise NotSendableError(
                f"{cls.__name__} is not in the Fanout server's estimator registry; it builds only scikit-learn "
                "estimators that need no constructor arguments (GET /api/v1/estimators lists them)"
            )
        inside = cls.__module__ == module or cls.__module__.startswith(module + ".")
        if not inside or getattr(importlib.import_module(module), cls.__name__, None) is not cls:
            raise NotSendableError(
                f"{cls.__module__}.{cls.__qualname__} cannot be sent to Fanout: the server's {cls.__name__} is "
                f"{module}.{cls.__name__}, another class"
            )


def _check_key(key: Any, spec: EstimatorSpec, what: str) -> None:
    if not isinstance(key, str):
        raise NotSendableError(f"{what} {key!r} cannot be sent to Fanout: parameter names are strings")
    if key.rpartition("__")[2] in LOCAL_ONLY:
        raise NotSendableError(f"{what} {key!r} cannot be sent to Fanout: parallelism inside a fit is Fanout's to set")
    if spec.steps and "__" not in key:
        raise NotSendableError(
            f"{what} {key!r} cannot be sent to Fanout: a pipeline's steps and its own parameters are fixed; "
            f"search the parameters of its steps (such as '{spec.steps[-1][0]}__<param>')"
        )


def _values(estimator: Any, key: str, values: Iterable[Any], what: str) -> list[Any]:
    out = []
    for value in values:
        try:
            converted = json_value(value)
        except Refused as exc:
            raise NotSendableError(f"{what} {key!r} cannot be sent to Fanout: {exc}") from None
        if has_non_list_sequence(value) and (reason := list_refused(estimator, key, value, converted)):
            raise NotSendableError(f"{what} {key!r} cannot be sent to Fanout: {reason}")
        out.append(converted)
    return out


def grid_spec(param_grid: Any, estimator: Any, spec: EstimatorSpec) -> list[dict[str, list[Any]]]:
    """`param_grid` (a dict or a list of dicts, checked by scikit-learn's `ParameterGrid`) with server keys."""
    from sklearn.model_selection import ParameterGrid

    if len(ParameterGrid(param_grid)) == 0:  # scikit-learn's own checks and messages, then its count
        raise ValueError("No fits were performed. Was the CV iterator empty? Were there no candidates?")
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    out = []
    for grid in grids:
        converted = {}
        for key, values in grid.items():
            _check_key(key, spec, "Parameter grid for parameter")
            converted[spec.to_server(key)] = _values(estimator, key, values, "Parameter grid for parameter")
        out.append(converted)
    return out


def distributions_spec(param_distributions: Any, estimator: Any, spec: EstimatorSpec) -> list[dict[str, Any]]:
    """`param_distributions` (checked by scikit-learn's `ParameterSampler`): lists, and frozen scipy.stats
    distributions as `{"distribution", "args", "kwargs"}`."""
    from sklearn.model_selection import ParameterSampler

    ParameterSampler(param_distributions, n_iter=1)  # scikit-learn's own checks and messages
    dists = [param_distributions] if isinstance(param_distributions, Mapping) else list(param_distributions)
    what = "Parameter distribution for parameter"
    out = []
    for dist in dists:
        converted: dict[str, Any] = {}
        for key, value in dist.items():
            _check_key(key, spec, what)
            if hasattr(value, "rvs"):
                try:
                    converted[spec.to_server(key)] = distribution(value)
                except Refused as exc:
                    raise NotSendableError(f"{what} {key!r} cannot be sent to Fanout: {exc}") from None
            else:
                converted[spec.to_server(key)] = _values(estimator, key, value, what)
        if spec.reorders(dist):
            warnings.warn(
                "The pipeline's step names sort these parameters in another order than the server's names "
                f"({', '.join(n for _, n in spec.steps)}), so the sampled candidates differ from "
                "RandomizedSearchCV's for the same random_state; name the steps as make_pipeline does to get "
                "the same ones",
                UserWarning,
                stacklevel=3,
            )
        out.append(converted)
    return out


def scoring_spec(scoring: Any) -> str | list[str] | None:
    """None, a scorer name, or a list or tuple of names; callables and dicts of them cannot be sent."""
    if scoring is None or isinstance(scoring, str):
        return scoring
    if isinstance(scoring, (list, tuple)) and all(isinstance(s, str) for s in scoring):
        return list(scoring)
    raise NotSendableError(
        f"scoring={scoring!r} cannot be sent to Fanout: give None, a scorer name from "
        "sklearn.metrics.get_scorer_names() or a list of such names (callables, make_scorer and dicts are not)"
    )


def _indices(part: Any, n: int) -> list[int]:
    arr = np.asarray(part)
    if arr.dtype == bool:
        arr = np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise NotSendableError(f"cv: a split must be a 1-D array of row indices, got {part!r}")
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise NotSendableError(f"cv: a split holds row index {int(arr.max())}, but there are {n} rows")
    return [int(i) % n for i in arr]


def cv_spec(cv: Any, X: Any, y: Any, groups: Any, *, classifier: bool) -> dict[str, Any]:
    """None → 5 folds, an int → that many (the server picks StratifiedKFold for a classifier, as `check_cv`
    does); any other CV object or iterable is split here once and sent as explicit splits."""
    from sklearn.model_selection import check_cv

    splitter = check_cv(cv, y, classifier=classifier)  # scikit-learn's own checks (n_splits >= 2, …)
    if cv is None:
        return {"n_splits": 5}
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        return {"n_splits": int(cv)}
    n = len(X)
    splits = [[_indices(train, n), _indices(test, n)] for train, test in splitter.split(X, y, groups)]
    if not splits:
        raise ValueError("No fits were performed. Was the CV iterator empty? Were there no candidates?")
    return {"splits": splits}

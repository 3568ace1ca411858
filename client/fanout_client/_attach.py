"""A search's stored spec (the server's canonical JSON) → the constructor arguments of a Fanout search object."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._values import freeze


def _load_class(name: str, modules: Mapping[str, str]) -> type:
    from sklearn.base import BaseEstimator

    module = modules.get(name)
    if module is None or not (module == "sklearn" or module.startswith("sklearn.")):
        raise ValueError(f"the server's spec names {name!r}, which is not a scikit-learn estimator of its registry")
    cls = getattr(importlib.import_module(module), name, None)
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        raise ValueError(f"{module}.{name} is not a scikit-learn estimator")
    return cls


def estimator_from_spec(spec: Mapping[str, Any], registry: Sequence[Mapping[str, Any]]) -> Any:
    """The estimator the spec names, from the registry's classes, with its fixed parameters (a pipeline with
    make_pipeline's step names, as the server builds it)."""
    from sklearn.pipeline import make_pipeline

    modules = {str(e["name"]): str(e["module"]) for e in registry}
    names = spec["estimator"] if isinstance(spec["estimator"], list) else [spec["estimator"]]
    objs = [_load_class(str(n), modules)() for n in names]
    est = objs[0] if len(objs) == 1 else make_pipeline(*objs)
    if spec.get("params"):
        est.set_params(**spec["params"])
    return est


def _unwrap(items: Any) -> Any:
    return items[0] if isinstance(items, list) and len(items) == 1 else items


def _cv(cv: Any, classifier: bool) -> Any:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    if isinstance(cv, int) or cv is None:
        return cv
    if "splits" in cv:
        return [(np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)) for train, test in cv["splits"]]
    n_splits = int(cv.get("n_splits", 5))
    if cv.get("groups"):
        return GroupKFold(n_splits)
    if cv.get("shuffle"):
        splitter = StratifiedKFold if classifier else KFold
        return splitter(n_splits, shuffle=True, random_state=cv.get("random_state"))
    return n_splits


def search_arguments(spec: Mapping[str, Any], registry: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(strategy, keyword arguments of FanoutSearchCV or FanoutRandomizedSearchCV) for a stored spec."""
    from sklearn.base import is_classifier

    strategy = str(spec.get("strategy", "grid"))
    if strategy not in ("grid", "random"):
        raise ValueError(f"attach rebuilds grid and random searches; this one's strategy is {strategy!r}")
    estimator = estimator_from_spec(spec, registry)
    scoring = spec.get("scoring")
    refit = spec.get("refit", True)
    if isinstance(scoring, list) and refit is True:  # the server's "first metric"; scikit-learn wants its name
        refit = scoring[0]
    kwargs: dict[str, Any] = {
        "estimator": estimator,
        "scoring": scoring,
        "refit": refit,
        "cv": _cv(spec.get("cv"), is_classifier(estimator)),
        "return_train_score": bool(spec.get("return_train_score", False)),
        "name": spec.get("name") or None,
    }
    if strategy == "grid":
        kwargs["param_grid"] = _unwrap(spec.get("param_grid", {}))
    else:
        stored = spec["param_distributions"]
        stored = [stored] if isinstance(stored, dict) else stored
        dists = [{k: freeze(v) if isinstance(v, dict) else v for k, v in d.items()} for d in stored]
        kwargs.update(param_distributions=_unwrap(dists), n_iter=spec.get("n_iter", 10))
        kwargs["random_state"] = spec.get("random_state")
    return strategy, kwargs

"""The refitted model: a skops file loaded without pickle, then made to look like the user's estimator."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._spec import EstimatorSpec

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
SAFE_TYPES = frozenset({"numpy.dtype"})  # defined in the `numpy` module itself; rebuilt from its name, no code


def _trustable(name: str) -> bool:
    """A dotted name of a class defined in scikit-learn, numpy or scipy (not a function, not another package's)."""
    if name in SAFE_TYPES:
        return True
    module, _, attr = name.rpartition(".")
    if not module.startswith(TRUSTED_PREFIXES) or not attr:
        return False
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    return isinstance(found, type) and str(getattr(found, "__module__", "")).startswith(TRUSTED_PREFIXES)


def load_skops(payload: bytes, search_id: int) -> Any:
    """The estimator in a skops file's bytes. skops lists the types it does not trust by default; each must
    be a class of scikit-learn, numpy or scipy, or nothing is loaded."""
    import skops.io  # type: ignore[import-untyped]  # skops ships no type information

    untrusted: list[str] = skops.io.get_untrusted_types(data=payload)
    refused = [name for name in untrusted if not _trustable(name)]
    if refused:
        raise ValueError(
            f"the model of search {search_id} holds types that are not scikit-learn, numpy or scipy classes, so "
            f"it is not loaded: {', '.join(refused)}"
        )
    return skops.io.loads(payload, trusted=untrusted)


def as_users(
    model: Any, spec: EstimatorSpec | None, feature_names: np.ndarray | None, object_labels: bool = False
) -> Any:
    """The server's model with the user's step names, the parameters kept locally (n_jobs), the DataFrame's
    column names and, for labels that came as objects (strings in an object array or a pandas Series; sent as
    a numpy string array), object `classes_`, so it looks like what `GridSearchCV` would have refitted."""
    if spec is not None and spec.single_step:
        from sklearn.pipeline import Pipeline

        model = Pipeline([(spec.steps[0][0], model)])
    elif spec is not None and spec.steps:
        steps = getattr(model, "steps", None)
        if steps is None or [name for name, _ in steps] != [server for _, server in spec.steps]:
            raise ValueError(f"the server's model is not the pipeline that was sent: {model!r}")
        model.steps = [(user, step) for (user, _), (_, step) in zip(spec.steps, steps, strict=True)]
    if spec is not None and spec.local:
        model.set_params(**spec.local)
    if feature_names is not None:
        first = model.steps[0][1] if hasattr(model, "steps") else model
        first.feature_names_in_ = feature_names
    last = model.steps[-1][1] if hasattr(model, "steps") else model
    classes = getattr(last, "classes_", None)
    if object_labels and isinstance(classes, np.ndarray) and classes.dtype != object:
        last.classes_ = classes.astype(object)
    return model

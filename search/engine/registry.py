"""Estimator registry: every scikit-learn classifier, regressor and transformer, by class name.

Users name estimators; they never give an import path. A name is looked up here and nowhere else.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from sklearn.base import BaseEstimator

Kind = Literal["classifier", "regressor", "transformer"]


@dataclass(frozen=True)
class EstimatorInfo:
    name: str
    kind: Kind
    module: str

    def load(self) -> type[BaseEstimator]:
        return load_class(self.module, self.name)


def load_class(module: str, name: str) -> type[BaseEstimator]:
    """Import one registry class by its public module; refuses anything outside scikit-learn."""
    if module != "sklearn" and not module.startswith("sklearn."):
        raise ValueError(f"estimator module {module!r} is not part of scikit-learn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        cls = getattr(importlib.import_module(module), name)
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        raise ValueError(f"{module}.{name} is not a scikit-learn estimator")
    return cls


def _public_module(cls: type) -> str:
    """`sklearn.ensemble._forest` -> `sklearn.ensemble`, the module users import it from: the path up to
    its first private part (`sklearn.ensemble._hist_gradient_boosting.gradient_boosting` too)."""
    public: list[str] = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join(public)


def _cache_file() -> Path:
    import sklearn

    base = Path(os.environ.get("FANOUT_VAR_DIR") or tempfile.gettempdir())
    return base / f"registry-v2-sklearn-{sklearn.__version__}.json"  # v2: public modules of nested packages


@cache
def registry() -> dict[str, EstimatorInfo]:
    """Every estimator constructible without arguments (meta-estimators that need one are left out).

    Scanning scikit-learn imports all of it (~0.3 s), so the result is kept in a small JSON file per
    scikit-learn version; a command or worker then imports only the modules it really uses."""
    path = _cache_file()
    try:
        return {n: EstimatorInfo(n, k, m) for n, (k, m) in json.loads(path.read_text()).items()}
    except (OSError, ValueError, TypeError):
        found = _scan()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({n: [i.kind, i.module] for n, i in found.items()}))
        tmp.replace(path)
    except OSError:
        pass  # a read-only place only costs the scan next time
    return found


def _scan() -> dict[str, EstimatorInfo]:
    from sklearn.utils import all_estimators

    found: dict[str, EstimatorInfo] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for kind in ("classifier", "regressor", "transformer"):
            for name, cls in all_estimators(type_filter=kind):
                if name in found:
                    continue  # a class that is both (rare): the first kind wins
                try:
                    cls()
                except TypeError:
                    continue
                found[name] = EstimatorInfo(name=name, kind=kind, module=_public_module(cls))
    return dict(sorted(found.items()))


def names(kind: Kind | None = None) -> list[str]:
    return [n for n, info in registry().items() if kind is None or info.kind == kind]


def lookup(name: str) -> EstimatorInfo:
    """The registry entry for `name`; KeyError with the closest names when it is unknown."""
    try:
        return registry()[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, registry(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown estimator {name!r}.{hint}") from None


def build(steps: tuple[tuple[str, str], ...], params: dict[str, Any] | None = None) -> BaseEstimator:
    """An unfitted estimator from (name, module) steps; two or more steps make a Pipeline."""
    from sklearn.pipeline import make_pipeline

    objs = [load_class(module, name)() for name, module in steps]
    est: BaseEstimator = objs[0] if len(objs) == 1 else make_pipeline(*objs)
    if params:
        est.set_params(**params)
    return est

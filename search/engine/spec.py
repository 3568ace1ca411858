"""Search specs: parse JSON-like data into a frozen `SearchSpec` (shape and types only).

`parse_spec` checks shape and types (unknown keys are an error); `search.engine.validate.validate_spec`
then builds the estimator, the grid, the CV splitter and the scorers with scikit-learn's own validation
and returns a `Plan`. Every failure is a `SpecError` that names the field, says what came in and what is
allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import datasets, sampling
from .errors import SpecError
from .folds import CVSpec, parse_cv
from .halving import HALVING_KEYS, MIN_FACTOR, HalvingSpec
from .holdout import HoldoutSpec, parse_holdout

__all__ = ["CVSpec", "DatasetSpec", "SearchSpec", "SpecError", "parse_spec"]

SPEC_KEYS = {
    "name",
    "estimator",
    "params",
    "param_grid",
    "dataset",
    "cv",
    "scoring",
    "refit",
    "n_jobs",
    "return_train_score",
    "strategy",
    "param_distributions",
    "n_iter",
    "random_state",
    "halving",
    "holdout",
}
STRATEGIES = ("grid", "random", "halving")
DATASET_KEYS = {"name", "options", "csv", "target", "id"}
MAX_NESTING = 8  # lists inside lists in a parameter value (hidden_layer_sizes needs 2)


@dataclass(frozen=True)
class DatasetSpec:
    """Exactly one of `name` (bundled or generator), `csv` (a file path plus `target`) and `id` (a data set the
    search's owner has uploaded; resolved where the data is loaded, services.datasets.dataset_load)."""

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    csv: str | None = None
    target: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.id is not None:
            return {"id": self.id}
        if self.csv is not None:
            return {"csv": self.csv, "target": self.target}
        out: dict[str, Any] = {"name": self.name}
        if self.options:
            out["options"] = dict(self.options)
        return out


@dataclass(frozen=True)
class SearchSpec:
    name: str
    estimator: tuple[str, ...]
    dataset: DatasetSpec
    param_grid: tuple[dict[str, list[Any]], ...] = ({},)
    params: dict[str, Any] = field(default_factory=dict)
    cv: CVSpec = field(default_factory=CVSpec)
    scoring: str | tuple[str, ...] | None = None
    refit: bool | str = True  # False: no model; a metric name: which one picks the best (as GridSearchCV)
    n_jobs: int = -1
    return_train_score: bool = False
    strategy: str = "grid"  # "grid", "random" (RandomizedSearchCV) or "halving" (HalvingGridSearchCV)
    param_distributions: tuple[dict[str, Any], ...] = ()
    n_iter: int = 10
    random_state: int | None = None
    halving: HalvingSpec | None = None
    holdout: HoldoutSpec | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric keys as scikit-learn names them in `cv_results_`: `score` unless a list was given."""
        return self.scoring if isinstance(self.scoring, tuple) else ("score",)

    @property
    def refit_metric(self) -> str:
        return self.refit if isinstance(self.refit, str) else self.metrics[0]

    @property
    def estimator_label(self) -> str:
        return " → ".join(self.estimator)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form; `parse_spec(spec.to_dict()) == spec`."""
        out: dict[str, Any] = {
            "name": self.name,
            "estimator": list(self.estimator) if len(self.estimator) > 1 else self.estimator[0],
            "params": dict(self.params),
            "param_grid": [dict(g) for g in self.param_grid],
            "dataset": self.dataset.to_dict(),
            "cv": self.cv.to_dict(),
            "scoring": list(self.scoring) if isinstance(self.scoring, tuple) else self.scoring,
            "refit": self.refit,
            "n_jobs": self.n_jobs,
            "return_train_score": self.return_train_score,
        }
        if self.strategy != "grid":
            out["strategy"] = self.strategy
            out["random_state"] = self.random_state
        if self.param_distributions:  # random search, or halving over sampled candidates
            del out["param_grid"]
            out["param_distributions"] = [dict(d) for d in self.param_distributions]
        if self.strategy == "random":
            out["n_iter"] = self.n_iter
        if self.halving is not None:
            out["halving"] = self.halving.to_dict()
        if self.holdout is not None:
            out["holdout"] = self.holdout.to_dict()
        return out


# ---------------------------------------------------------------------------------------------
# Parsing: shape and types only
# ---------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise SpecError(
            f"{prefix}{unknown[0] or repr(unknown[0])}",  # an empty key is named ''
            f"unknown key; allowed keys: {', '.join(sorted(allowed))}",
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_json_value(value: Any, where: str, depth: int = 0) -> None:
    """Only JSON values reach scikit-learn: no NaN/inf, no objects smuggled in, no deep nesting."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(where, f"{value!r} is not allowed; use a finite number")
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            raise SpecError(where, f"lists nested more than {MAX_NESTING} deep are not allowed")
        for i, v in enumerate(value):
            _check_json_value(v, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        raise SpecError(where, "objects are not allowed as parameter values")
    elif not isinstance(value, (str, int, float, bool, type(None), list)):
        raise SpecError(where, f"{_type_name(value)} is not a JSON value")


def _parse_estimator(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise SpecError(
        "estimator",
        f"expected a class name such as 'SVC' or a list of step names such as ['StandardScaler', 'SVC'], got {value!r}",
    )


def _parse_grid(value: Any) -> tuple[dict[str, list[Any]], ...]:
    grids = [value] if isinstance(value, dict) else value
    if not isinstance(grids, list) or not grids:
        raise SpecError("param_grid", f"expected an object or a non-empty list of objects, got {value!r}")
    out = []
    for i, g in enumerate(grids):
        where = "param_grid" if isinstance(value, dict) else f"param_grid[{i}]"
        if not isinstance(g, dict):
            raise SpecError(where, f"expected an object of parameter lists, got {_type_name(g)}")
        for key, values in g.items():
            _check_json_value(values, f"{where}.{key}")
        out.append(dict(g))
    return tuple(out)


def _parse_distributions(value: Any) -> tuple[dict[str, Any], ...]:
    """Lists (sampled uniformly) or `{"distribution": name, "args": [...]}` objects, frozen once to check them."""
    dists = [value] if isinstance(value, dict) else value
    if not isinstance(dists, list) or not dists:
        raise SpecError(
            "param_distributions",
            f"expected an object such as {{'C': {sampling.EXAMPLES.split(' or ')[0]}, 'kernel': ['rbf', 'linear']}} "
            f"or a non-empty list of such objects, got {value!r}",
        )
    out = []
    for i, d in enumerate(dists):
        where = "param_distributions" if isinstance(value, dict) else f"param_distributions[{i}]"
        if not isinstance(d, dict):
            raise SpecError(where, f"expected an object of lists or distributions, got {_type_name(d)}")
        for key, v in d.items():
            if isinstance(v, dict):
                try:
                    sampling.freeze(v)
                except sampling.DistributionError as exc:
                    raise SpecError(f"{where}.{key}", str(exc)) from None
            elif isinstance(v, list):
                if not v:
                    raise SpecError(f"{where}.{key}", "an empty list has nothing to sample; give at least one value")
                _check_json_value(v, f"{where}.{key}")
            else:
                expected = f"expected a list of values or a distribution such as {sampling.EXAMPLES}"
                raise SpecError(f"{where}.{key}", f"{expected}, got {v!r}")
        out.append(dict(d))
    return tuple(out)


def _parse_halving(value: Any, *, sampled: bool = False) -> HalvingSpec:
    """`halving` of a spec. `sampled`: candidates come from param_distributions (HalvingRandomSearchCV, whose
    defaults differ: n_candidates="exhaust" and min_resources="smallest")."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        example = "{'factor': 3, 'resource': 'n_samples'}"
        raise SpecError("halving", f"expected an object such as {example}, got {value!r}")
    _check_keys(value, HALVING_KEYS, "halving")
    if not sampled and "n_candidates" in value:
        raise SpecError(
            "halving.n_candidates", "only applies to candidates sampled from param_distributions; a grid has its own"
        )
    if sampled:
        value = {"n_candidates": "exhaust", "min_resources": "smallest", **value}
        n = value["n_candidates"]
        if not (_is_int(n) and n > 0) and n != "exhaust":
            raise SpecError("halving.n_candidates", f"expected a positive integer or 'exhaust', got {n!r}")
        if n == "exhaust" and value["min_resources"] == "exhaust":
            raise SpecError(
                "halving.min_resources",
                "n_candidates and min_resources cannot both be 'exhaust'; give min_resources 'smallest' or an integer",
            )
    hs = HalvingSpec(**value)
    if (
        isinstance(hs.factor, bool)
        or not isinstance(hs.factor, (int, float))
        or (isinstance(hs.factor, float) and not math.isfinite(hs.factor))
        or not hs.factor >= MIN_FACTOR
    ):
        raise SpecError(
            "halving.factor",
            f"expected a number greater than 1, of at least {MIN_FACTOR} (each round keeps 1/factor of the "
            f"candidates; a factor closer to 1 makes hundreds of rounds), got {hs.factor!r}",
        )
    for key in ("min_resources", "max_resources"):
        if isinstance(getattr(hs, key), bool):
            raise SpecError(f"halving.{key}", f"expected a positive integer, got {getattr(hs, key)!r}")
    if not isinstance(hs.resource, str) or not hs.resource:
        raise SpecError("halving.resource", f"expected 'n_samples' or an estimator parameter, got {hs.resource!r}")
    if not (isinstance(hs.min_resources, int) and hs.min_resources > 0) and hs.min_resources not in (
        "exhaust",
        "smallest",
    ):
        raise SpecError(
            "halving.min_resources", f"expected a positive integer, 'exhaust' or 'smallest', got {hs.min_resources!r}"
        )
    if not (isinstance(hs.max_resources, int) and hs.max_resources > 0) and hs.max_resources != "auto":
        raise SpecError("halving.max_resources", f"expected a positive integer or 'auto', got {hs.max_resources!r}")
    if hs.max_resources == "auto" and hs.resource != "n_samples":
        raise SpecError("halving.max_resources", "'auto' only works with resource 'n_samples'; give an integer budget")
    if not isinstance(hs.aggressive_elimination, bool):
        raise SpecError("halving.aggressive_elimination", f"expected true or false, got {hs.aggressive_elimination!r}")
    return hs


def _parse_dataset_id(value: dict[str, Any]) -> DatasetSpec:
    """`{"id": N}`: one of the owner's uploaded data sets, named by nothing else."""
    others = sorted(set(value) - {"id"})
    if others:
        raise SpecError(f"dataset.{others[0]}", "an uploaded data set is named by its id alone; remove this key")
    if not _is_int(value["id"]) or value["id"] < 1:
        raise SpecError("dataset.id", f"expected the positive integer id of one of your data sets, got {value['id']!r}")
    return DatasetSpec(id=value["id"])


def _parse_dataset(value: Any) -> DatasetSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise SpecError("dataset", f"expected an object such as {{'name': 'iris'}}, got {value!r}")
    _check_keys(value, DATASET_KEYS, "dataset")
    if "id" in value:
        return _parse_dataset_id(value)
    if ("name" in value) == ("csv" in value):
        raise SpecError(
            "dataset", "give exactly one of 'name' (built-in or generator), 'csv' (a file) and 'id' (an uploaded one)"
        )
    if "csv" in value:
        csv, target = value["csv"], value.get("target")
        if not isinstance(csv, str) or not csv:
            raise SpecError("dataset.csv", f"expected a file path, got {csv!r}")
        if not isinstance(target, str) or not target:
            raise SpecError("dataset.target", "a CSV data set needs the name of its target column")
        if "options" in value:
            raise SpecError("dataset.options", "options only apply to generators")
        return DatasetSpec(csv=csv, target=target)
    name, options = value["name"], value.get("options", {})
    if "target" in value:
        raise SpecError("dataset.target", "target only applies to CSV files")
    allowed = [*datasets.BUILTIN, *datasets.GENERATORS]
    if name not in allowed:
        raise SpecError("dataset.name", f"unknown data set {name!r}; allowed: {', '.join(allowed)}")
    if not isinstance(options, dict):
        raise SpecError("dataset.options", f"expected an object, got {_type_name(options)}")
    if options and name in datasets.BUILTIN:
        raise SpecError("dataset.options", f"{name} is a bundled data set and takes no options")
    for key, v in options.items():
        _check_json_value(v, f"dataset.options.{key}")
    if name in datasets.GENERATORS and "random_state" in options and options["random_state"] is None:
        raise SpecError(
            "dataset.options.random_state",
            "null draws different rows in every process that builds the data, so the folds would mix data sets; "
            "give an integer seed, or leave it out for 0",
        )
    if name in datasets.GENERATORS:
        try:
            options = datasets.normalise_generator_options(name, options)
        except datasets.DatasetError as exc:
            raise SpecError("dataset.options", str(exc)) from None
    return DatasetSpec(name=name, options=options)


def _parse_scoring(value: Any) -> str | tuple[str, ...] | None:
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        if len(set(value)) != len(value):
            raise SpecError("scoring", f"lists a metric twice: {value!r}")
        return tuple(value)
    raise SpecError("scoring", f"expected a scorer name or a list of them, got {value!r}")


def parse_spec(data: Any) -> SearchSpec:
    """Shape and type checks only; `validate.validate_spec` does the scikit-learn checks."""
    if not isinstance(data, dict):
        raise SpecError("spec", f"expected a JSON object, got {_type_name(data)}")
    _check_keys(data, SPEC_KEYS, "")
    for key in ("estimator", "dataset"):
        if key not in data:
            raise SpecError(key, "is required")
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise SpecError("name", f"expected a string of at most 200 characters, got {name!r}")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise SpecError("params", f"expected an object of fixed parameters, got {_type_name(params)}")
    for key, v in params.items():
        _check_json_value(v, f"params.{key}")
    n_jobs = data.get("n_jobs", -1)
    if not _is_int(n_jobs) or n_jobs == 0:  # its bound is a setting: guards.check_size
        raise SpecError("n_jobs", f"expected a non-zero integer (-1 = every core), got {n_jobs!r}")
    rts = data.get("return_train_score", False)
    if not isinstance(rts, bool):
        raise SpecError("return_train_score", f"expected true or false, got {rts!r}")
    scoring = _parse_scoring(data.get("scoring"))
    refit = data.get("refit", True)
    if refit is None:  # specs stored before `refit` took true and false: the first metric, refitted
        refit = True
    if not isinstance(refit, (bool, str)):
        raise SpecError("refit", f"expected true, false or the name of one of the metrics, got {refit!r}")
    strategy = data.get("strategy", "grid")
    if strategy not in STRATEGIES:
        raise SpecError("strategy", f"expected one of {', '.join(map(repr, STRATEGIES))}, got {strategy!r}")
    only = {"param_distributions": ("random", "halving"), "n_iter": ("random",), "halving": ("halving",),
            "random_state": ("random", "halving")}  # fmt: skip
    for key, needs in only.items():
        if key in data and strategy not in needs:
            allowed = " or ".join(map(repr, needs))
            raise SpecError(key, f"only applies to strategy {allowed}; this search's strategy is {strategy!r}")
    if strategy == "random" and "param_grid" in data:
        raise SpecError("param_grid", "a random search samples param_distributions; rename param_grid to it")
    if strategy == "random" and "param_distributions" not in data:
        raise SpecError("param_distributions", "is required for strategy 'random'")
    if strategy == "halving" and "param_grid" in data and "param_distributions" in data:
        raise SpecError(
            "param_distributions",
            "successive halving runs either a grid (param_grid, as HalvingGridSearchCV) or sampled candidates "
            "(param_distributions, as HalvingRandomSearchCV), not both",
        )
    sampled = "param_distributions" in data
    n_iter = data.get("n_iter", 10)
    if not _is_int(n_iter) or n_iter < 1:
        raise SpecError("n_iter", f"expected a positive integer (candidates to sample), got {n_iter!r}")
    random_state = data.get("random_state", 0 if strategy != "grid" else None)
    if random_state is not None and (not _is_int(random_state) or not 0 <= random_state < 2**32):
        raise SpecError("random_state", f"expected an integer between 0 and 2**32 - 1, got {random_state!r}")
    if strategy == "halving" and random_state is None:
        random_state = 0  # every worker must subsample the same rows
    if strategy == "halving" and isinstance(scoring, tuple) and len(scoring) > 1:
        raise SpecError("scoring", "successive halving ranks candidates by one metric; give a single scorer")
    spec = SearchSpec(
        name=name,
        estimator=_parse_estimator(data["estimator"]),
        params=dict(params),
        param_grid=_parse_grid(data.get("param_grid", {})),
        dataset=_parse_dataset(data["dataset"]),
        cv=parse_cv(data.get("cv", 5)),
        scoring=scoring,
        refit=refit,
        n_jobs=n_jobs,
        return_train_score=rts,
        strategy=strategy,
        param_distributions=_parse_distributions(data["param_distributions"]) if sampled else (),
        n_iter=n_iter,
        random_state=random_state,
        halving=_parse_halving(data.get("halving"), sampled=sampled) if strategy == "halving" else None,
        holdout=parse_holdout(data["holdout"]) if data.get("holdout") not in (None, False) else None,
    )
    if isinstance(refit, str) and refit == scoring:  # GridSearchCV(scoring="f1", refit="f1"): one metric
        spec = replace(spec, refit=True)
    if isinstance(spec.refit, str) and spec.refit not in spec.metrics:
        raise SpecError("refit", f"{refit!r} is not one of the metrics {', '.join(spec.metrics)}")
    return spec

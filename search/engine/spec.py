"""Search specs: parse JSON-like data into a frozen `SearchSpec`, then validate it with scikit-learn.

`parse_spec` checks shape and types (unknown keys are an error); `validate_spec` builds the estimator,
the grid, the CV splitter and the scorers with scikit-learn's own validation and returns a `Plan`.
Every failure is a `SpecError` that names the field, says what came in and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import ParameterGrid

from . import datasets, registry, sampling
from .halving import HALVING_KEYS, HalvingSpec

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
}
STRATEGIES = ("grid", "random", "halving")
DATASET_KEYS = {"name", "options", "csv", "target"}
MAX_N_JOBS = 1024  # processes per unit; more would fork-bomb the worker's machine
MAX_NESTING = 8  # lists inside lists in a parameter value (hidden_layer_sizes needs 2)
CV_KEYS = {"n_splits", "shuffle", "random_state"}


class SpecError(ValueError):
    """A spec that cannot run. `field` is a dotted path such as `param_grid[1].C`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DatasetSpec:
    """Exactly one of `name` (bundled or generator) and `csv` (a file path plus `target`)."""

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    csv: str | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.csv is not None:
            return {"csv": self.csv, "target": self.target}
        out: dict[str, Any] = {"name": self.name}
        if self.options:
            out["options"] = dict(self.options)
        return out


@dataclass(frozen=True)
class CVSpec:
    n_splits: int = 5
    shuffle: bool = False
    random_state: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"n_splits": self.n_splits, "shuffle": self.shuffle, "random_state": self.random_state}


@dataclass(frozen=True)
class SearchSpec:
    name: str
    estimator: tuple[str, ...]
    dataset: DatasetSpec
    param_grid: tuple[dict[str, list[Any]], ...] = ({},)
    params: dict[str, Any] = field(default_factory=dict)
    cv: CVSpec = field(default_factory=CVSpec)
    scoring: str | tuple[str, ...] | None = None
    refit: str | None = None
    n_jobs: int = -1
    return_train_score: bool = False
    strategy: str = "grid"  # "grid", "random" (RandomizedSearchCV) or "halving" (HalvingGridSearchCV)
    param_distributions: tuple[dict[str, Any], ...] = ()
    n_iter: int = 10
    random_state: int | None = None
    halving: HalvingSpec | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metric keys as scikit-learn names them in `cv_results_`: `score` unless a list was given."""
        return self.scoring if isinstance(self.scoring, tuple) else ("score",)

    @property
    def refit_metric(self) -> str:
        return self.refit or self.metrics[0]

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
    if isinstance(hs.factor, bool) or not isinstance(hs.factor, (int, float)) or not hs.factor > 1:
        raise SpecError("halving.factor", f"expected a number greater than 1, got {hs.factor!r}")
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


def _parse_dataset(value: Any) -> DatasetSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise SpecError("dataset", f"expected an object such as {{'name': 'iris'}}, got {value!r}")
    _check_keys(value, DATASET_KEYS, "dataset")
    if ("name" in value) == ("csv" in value):
        raise SpecError("dataset", "give exactly one of 'name' (built-in or generator) and 'csv' (a file)")
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
    if name in datasets.GENERATORS:
        try:
            options = datasets.normalise_generator_options(name, options)
        except datasets.DatasetError as exc:
            raise SpecError("dataset.options", str(exc)) from None
    return DatasetSpec(name=name, options=options)


def _parse_cv(value: Any) -> CVSpec:
    if _is_int(value):
        value = {"n_splits": value}
    if not isinstance(value, dict):
        raise SpecError("cv", f"expected a number of folds or an object with n_splits, got {value!r}")
    _check_keys(value, CV_KEYS, "cv")
    n_splits = value.get("n_splits", 5)
    shuffle = value.get("shuffle", False)
    random_state = value.get("random_state")
    if not _is_int(n_splits) or n_splits < 2:
        raise SpecError("cv.n_splits", f"expected an integer of at least 2, got {n_splits!r}")
    if not isinstance(shuffle, bool):
        raise SpecError("cv.shuffle", f"expected true or false, got {shuffle!r}")
    if random_state is not None and (not _is_int(random_state) or not 0 <= random_state < 2**32):
        raise SpecError("cv.random_state", f"expected an integer between 0 and 2**32 - 1 or null, got {random_state!r}")
    if random_state is not None and not shuffle:
        raise SpecError("cv.random_state", "has no effect unless shuffle is true; remove it or set shuffle")
    if shuffle and random_state is None:
        random_state = 0  # a shuffled split must be the same in every worker process
    return CVSpec(n_splits=n_splits, shuffle=shuffle, random_state=random_state)


def _parse_scoring(value: Any) -> str | tuple[str, ...] | None:
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        if len(set(value)) != len(value):
            raise SpecError("scoring", f"lists a metric twice: {value!r}")
        return tuple(value)
    raise SpecError("scoring", f"expected a scorer name or a list of them, got {value!r}")


def parse_spec(data: Any) -> SearchSpec:
    """Shape and type checks only; `validate_spec` does the scikit-learn checks."""
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
    if not _is_int(n_jobs) or n_jobs == 0 or abs(n_jobs) > MAX_N_JOBS:
        allowed = f"a non-zero integer from -{MAX_N_JOBS} to {MAX_N_JOBS} (-1 = every core)"
        raise SpecError("n_jobs", f"expected {allowed}, got {n_jobs!r}")
    rts = data.get("return_train_score", False)
    if not isinstance(rts, bool):
        raise SpecError("return_train_score", f"expected true or false, got {rts!r}")
    scoring = _parse_scoring(data.get("scoring"))
    refit = data.get("refit")
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
        cv=_parse_cv(data.get("cv", 5)),
        scoring=scoring,
        refit=refit,
        n_jobs=n_jobs,
        return_train_score=rts,
        strategy=strategy,
        param_distributions=_parse_distributions(data["param_distributions"]) if sampled else (),
        n_iter=n_iter,
        random_state=random_state,
        halving=_parse_halving(data.get("halving"), sampled=sampled) if strategy == "halving" else None,
    )
    if refit is not None and refit not in spec.metrics:
        raise SpecError("refit", f"{refit!r} is not one of the metrics {', '.join(spec.metrics)}")
    return spec


# ---------------------------------------------------------------------------------------------
# Validation: scikit-learn's own checks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A validated spec, ready to run: steps resolved, candidates enumerated in GridSearchCV's order."""

    spec: SearchSpec
    steps: tuple[tuple[str, str], ...]  # (class name, public module)
    task: str  # "classification" or "regression"
    candidates: list[dict[str, Any]]

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    @property
    def n_fits(self) -> int:
        return self.n_candidates * self.spec.cv.n_splits


def _resolve_steps(names: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], str]:
    infos = []
    for i, name in enumerate(names):
        where = "estimator" if len(names) == 1 else f"estimator[{i}]"
        try:
            infos.append(registry.lookup(name))
        except KeyError as exc:
            raise SpecError(where, str(exc.args[0])) from None
    *head, last = infos
    if last.kind not in ("classifier", "regressor"):
        where = "estimator" if not head else f"estimator[{len(head)}]"
        raise SpecError(where, f"{last.name} is a {last.kind}; the last step must be a classifier or regressor")
    for i, info in enumerate(head):
        if info.kind != "transformer":
            raise SpecError(
                f"estimator[{i}]", f"{info.name} is a {info.kind}; steps before the last must be transformers"
            )
    task = "classification" if last.kind == "classifier" else "regression"
    return tuple((i.name, i.module) for i in infos), task


def _validate_estimator_params(est: BaseEstimator, where: str) -> None:
    """scikit-learn's own parameter-constraint check, on the estimator and every nested step."""
    from sklearn.utils._param_validation import InvalidParameterError

    objs = [est, *[step for _, step in getattr(est, "steps", [])]]
    for obj in objs:
        validate = getattr(obj, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except InvalidParameterError as exc:
            raise SpecError(where, str(exc)) from None


def _check_param_name(est: BaseEstimator, valid: dict[str, Any], key: str, where: str) -> None:
    if key in valid:
        return
    import difflib

    lowered = {k.lower(): k for k in valid}
    close = [lowered[c] for c in difflib.get_close_matches(key.lower(), lowered, n=3, cutoff=0.5)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise SpecError(
        f"{where}.{key}",
        f"{type(est).__name__} has no parameter {key!r}.{hint} Valid parameters: {', '.join(sorted(valid))}",
    )


def _set_params(est: BaseEstimator, params: dict[str, Any], where: str) -> BaseEstimator:
    valid = est.get_params(deep=True)
    for key in params:
        _check_param_name(est, valid, key, where)
    try:
        est.set_params(**params)
    except (TypeError, ValueError) as exc:
        raise SpecError(where, str(exc)) from None
    return est


def scorer_task(name: str) -> str:
    """`classification`, `regression` or `clustering`, from the module of the scorer's metric."""
    from sklearn.metrics import get_scorer

    module = get_scorer(name)._score_func.__module__
    if module.endswith("_regression"):
        return "regression"
    if ".cluster." in module:
        return "clustering"
    return "classification"


def scorers_for(task: str) -> list[str]:
    """Scorer names that make sense for a task (clustering scorers compare labels: classification)."""
    return [n for n in get_scorer_names() if (scorer_task(n) == "regression") == (task == "regression")]


def _check_scoring(spec: SearchSpec, task: str) -> None:
    known = set(get_scorer_names())
    names = spec.scoring if isinstance(spec.scoring, tuple) else ((spec.scoring,) if spec.scoring else ())
    for name in names:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SpecError("scoring", f"unknown scorer {name!r}.{hint} See sklearn.metrics.get_scorer_names().")
        kind = scorer_task(name)
        if (kind == "regression") != (task == "regression"):
            raise SpecError(
                "scoring",
                f"{name!r} is a {kind} scorer and {spec.estimator[-1]} is a {task} estimator; "
                f"use one of: {', '.join(scorers_for(task)[:12])}, …",
            )


def validate_spec(spec: SearchSpec) -> Plan:
    """Build everything the search needs without fitting anything; raise SpecError on the first problem."""
    steps, task = _resolve_steps(spec.estimator)
    base = registry.build(steps)
    _set_params(base, spec.params, "params")
    _validate_estimator_params(base, "params")
    if spec.param_distributions:  # random search, or halving over sampled candidates
        candidates = _random_candidates(spec, base, _sample_count(spec))
    else:
        candidates = _grid_candidates(spec, base)
    if spec.halving is not None:
        _check_halving(spec, base, candidates)
    _check_scoring(spec, task)
    assert is_classifier(base) or is_regressor(base)
    return Plan(spec=spec, steps=steps, task=task, candidates=candidates)


def _validate_values(base: BaseEstimator, pairs: Iterable[tuple[str, Any]], where: str) -> None:
    """Each (parameter, value) alone against the estimator's constraints, with scikit-learn's own
    `validate_parameter_constraints` on that one parameter (what `_validate_params` runs for each): no clone
    per value, so a grid of 500,000 values takes seconds, not many minutes, in a web request."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    valid = base.get_params(deep=True)
    for key, value in pairs:
        _check_param_name(base, valid, key, where)
        owner, name = _param_owner(base, key)
        constraints = getattr(owner, "_parameter_constraints", None) or {}
        if name not in constraints:  # not described (or a whole step): set it on a copy and validate that
            est = _set_params(clone(base), {key: value}, where)
            _validate_estimator_params(est, f"{where}.{key}")
            continue
        try:
            validate_parameter_constraints({name: constraints[name]}, {name: value}, type(owner).__name__)
        except InvalidParameterError as exc:
            raise SpecError(f"{where}.{key}", str(exc)) from None


def _param_owner(est: BaseEstimator, key: str) -> tuple[Any, str]:
    """The object a (possibly `step__param`) key sets, and its own name there; nested deeper: the estimator."""
    step, sep, rest = key.partition("__")
    steps = dict(getattr(est, "steps", []))
    if sep and step in steps and "__" not in rest:
        return steps[step], rest
    return (est, key) if not sep else (None, key)


# Sampled halving whose round-0 size needs the data set (n_candidates="exhaust" over n_samples) is first
# validated on this many samples; `sampled_for_data` draws the real number once the data set is loaded.
PROVISIONAL_SAMPLES = 10


def _sample_count(spec: SearchSpec) -> int:
    """Candidates to sample: `n_iter`, or HalvingRandomSearchCV's `n_candidates` where the data is not needed."""
    hs = spec.halving
    if hs is None:
        return spec.n_iter
    if needs_data_to_sample(spec):
        return PROVISIONAL_SAMPLES
    n = hs.sample_size(n_samples=None, n_splits=spec.cv.n_splits, n_classes=None)
    assert n is not None
    return n


def needs_data_to_sample(spec: SearchSpec) -> bool:
    """True when the number of sampled candidates depends on the data set (see `sampled_for_data`)."""
    hs = spec.halving
    if hs is None or not spec.param_distributions or hs.n_candidates != "exhaust":
        return False
    return hs.resource == "n_samples" and not (isinstance(hs.min_resources, int) and isinstance(hs.max_resources, int))


def sampled_for_data(plan: Plan, *, n_samples: int, n_classes: int | None) -> Plan:
    """The plan of a halving search over sampled candidates with n_candidates="exhaust", its candidates drawn
    as HalvingRandomSearchCV draws them for this data set (max_resources // min_resources); others unchanged."""
    if not needs_data_to_sample(plan.spec):
        return plan
    hs = plan.spec.halving
    assert hs is not None
    n = hs.sample_size(n_samples=n_samples, n_splits=plan.spec.cv.n_splits, n_classes=n_classes)
    assert n is not None
    base = registry.build(plan.steps)
    _set_params(base, plan.spec.params, "params")
    return replace(plan, candidates=_random_candidates(plan.spec, base, n))


def _random_candidates(spec: SearchSpec, base: BaseEstimator, n_iter: int) -> list[dict[str, Any]]:
    """`RandomizedSearchCV`'s candidates (scikit-learn's `ParameterSampler`), each value validated."""
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        RandomizedSearchCV(base, list(spec.param_distributions), n_iter=n_iter)._validate_params()
    except InvalidParameterError as exc:
        raise SpecError("param_distributions", str(exc)) from None
    valid = base.get_params(deep=True)
    for di, dist in enumerate(spec.param_distributions):
        where = "param_distributions" if len(spec.param_distributions) == 1 else f"param_distributions[{di}]"
        for key in dist:
            _check_param_name(base, valid, key, where)
    candidates = sampling.sample(spec.param_distributions, n_iter, spec.random_state)
    seen: set[tuple[str, str]] = set()
    pairs = []
    for c in candidates:
        for key, value in c.items():
            if (key, repr(value)) not in seen:
                seen.add((key, repr(value)))
                pairs.append((key, value))
    _validate_values(base, pairs, "param_distributions")
    return candidates


def _grid_candidates(spec: SearchSpec, base: BaseEstimator) -> list[dict[str, Any]]:
    for gi, grid in enumerate(spec.param_grid):
        where = "param_grid" if len(spec.param_grid) == 1 else f"param_grid[{gi}]"
        try:
            list(ParameterGrid(grid))  # scikit-learn's own grid validation
        except (TypeError, ValueError) as exc:
            raise SpecError(where, str(exc)) from None
        _validate_values(base, [(key, value) for key, values in grid.items() for value in values], where)
    candidates = list(ParameterGrid(list(spec.param_grid)))
    if not candidates:
        raise SpecError("param_grid", "the grid has no candidates")
    return candidates


def _check_halving(spec: SearchSpec, base: BaseEstimator, candidates: list[dict[str, Any]]) -> None:
    """`HalvingGridSearchCV`'s (or `HalvingRandomSearchCV`'s) own parameter validation, plus its checks on
    the budget parameter."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV
    from sklearn.utils._param_validation import InvalidParameterError

    hs = spec.halving
    assert hs is not None
    try:
        if spec.param_distributions:
            HalvingRandomSearchCV(base, list(spec.param_distributions), **hs.to_dict())._validate_params()
        else:
            HalvingGridSearchCV(base, list(spec.param_grid), **hs.to_dict())._validate_params()
    except InvalidParameterError as exc:
        raise SpecError("halving", str(exc)) from None
    if hs.resource == "n_samples":
        return
    if hs.resource not in base.get_params(deep=True):
        raise SpecError(
            "halving.resource",
            f"{hs.resource!r} is not a parameter of {type(base).__name__}; use 'n_samples' or a budget parameter "
            "such as n_estimators or max_iter",
        )
    if any(hs.resource in c for c in candidates):
        where = "param_distributions" if spec.param_distributions else "param_grid"
        raise SpecError("halving.resource", f"{hs.resource!r} is the budget; remove it from {where}")
    max_r = hs.max_resources
    assert isinstance(max_r, int)
    _validate_values(base, [(hs.resource, max_r)], "halving.max_resources")

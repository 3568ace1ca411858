"""Property-based fuzzing of the validation layer (hypothesis): generated specs and CSV files always get
either a valid result or the documented error (`SpecError`, `DatasetError`, a form error), never another
exception.

Runs under the `fanout-fuzz` profile: derandomized (the same examples on every run, so CI is
deterministic), no example database, no deadline (scikit-learn's first import of a module is slow).
`HYPOTHESIS_PROFILE=fanout-fuzz-long` runs ten times more examples, by hand; `fanout-fuzz-explore` runs
them with a fresh seed each time, to look for new bugs.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.engine import datasets, guards, spec
from search.engine.datasets import DatasetError
from search.engine.spec import SearchSpec, SpecError
from search.engine.validate import Plan, check_data_fits_cv, validate_spec
from search.forms.datasets import DatasetUploadForm
from search.forms.searches import SearchForm

settings.register_profile(
    "fanout-fuzz", derandomize=True, database=None, deadline=None, max_examples=250, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
settings.register_profile("fanout-fuzz-long", settings.get_profile("fanout-fuzz"), max_examples=2500)
settings.register_profile("fanout-fuzz-explore", settings.get_profile("fanout-fuzz-long"), derandomize=False)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "fanout-fuzz"))


def fuzz(examples: int) -> settings:
    """The profile, with `examples` per 100 of its max_examples (250 by default, 2,500 in the long one)."""
    return settings(PROFILE, max_examples=examples * PROFILE.max_examples // 100)


# --- strategies -------------------------------------------------------------------------------------

NAMES = ["SVC", "LogisticRegression", "Ridge", "KNeighborsClassifier", "DecisionTreeClassifier",
         "RandomForestRegressor", "StandardScaler", "PCA", "os.system", "sklearn.svm.SVC", "", "svc"]  # fmt: skip
PARAMS = ["C", "gamma", "kernel", "degree", "n_neighbors", "weights", "max_depth", "min_samples_split",
          "penalty", "solver", "alpha", "tol", "max_iter", "n_estimators", "fit_intercept", "class_weight",
          "memory", "steps", "svc__C", "svc", "standardscaler__with_mean", "random_state", "n_jobs", "verbose",
          "criterion", "p", "l1_ratio", "hidden_layer_sizes", ""]  # fmt: skip
SCORERS = ["accuracy", "f1", "f1_macro", "roc_auc", "r2", "neg_mean_squared_log_error", "neg_log_loss",
           "balanced_accuracy", "top_k_accuracy", "precision", "nope", ""]  # fmt: skip
DATASETS = ["iris", "wine", "diabetes", "breast_cancer", "make_classification", "make_regression", "make_moons",
            "make_blobs", "irises"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**6), max_value=10**6), st.sampled_from([0, 1, 2, 3, -1]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=-10, max_value=10),
    st.text(max_size=12), st.sampled_from(["rbf", "linear", "auto", "scale", "l1", "l2", "lbfgs", "liblinear",
                                           "balanced", "distance", "gini", "sqrt", "nan", "inf"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
param_names = st.sampled_from(PARAMS) | st.text(max_size=10)
grid = st.dictionaries(param_names, st.lists(json_values, max_size=4) | json_values, max_size=3)
spec_keys = st.sampled_from(sorted(spec.SPEC_KEYS)) | st.text(max_size=10)

BASES: list[dict[str, Any]] = [
    {"estimator": "SVC", "dataset": "iris", "param_grid": {"C": [0.1, 1], "kernel": ["rbf", "linear"]}, "cv": 3},
    {"estimator": ["StandardScaler", "SVC"], "dataset": "wine", "param_grid": [{"svc__C": [1, 10]}],
     "scoring": ["accuracy", "f1_macro"], "cv": {"n_splits": 3, "shuffle": True, "random_state": 0}},
    {"estimator": "LogisticRegression", "dataset": {"name": "make_classification", "options": {"n_samples": 60}},
     "param_grid": {"C": [0.5]}, "params": {"max_iter": 200}, "cv": 2},
    {"estimator": "Ridge", "dataset": {"name": "make_regression", "options": {"n_samples": 40, "n_features": 3}},
     "param_grid": {"alpha": [0.1, 1.0]}, "scoring": "r2", "cv": 2},
    {"estimator": "KNeighborsClassifier", "dataset": {"name": "make_moons", "options": {"noise": 0.2}},
     "param_grid": {"n_neighbors": [3, 5]}, "cv": 4},
]  # fmt: skip


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with a few random edits: a key replaced, removed or added, a grid value or option changed."""
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        action = draw(st.sampled_from(["set", "drop", "grid", "option", "estimator", "scoring", "cv"]))
        if action == "set":
            data[draw(spec_keys)] = draw(json_values)
        elif action == "drop" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
        elif action == "grid":
            target = data.get("param_grid")
            target = target[0] if isinstance(target, list) and target and isinstance(target[0], dict) else target
            if isinstance(target, dict):
                target[draw(param_names)] = draw(st.lists(json_values, max_size=4) | json_values)
        elif action == "option" and isinstance(data.get("dataset"), dict) and "name" in data["dataset"]:
            options = data["dataset"].setdefault("options", {})
            if isinstance(options, dict):
                key = draw(st.sampled_from(["n_samples", "n_features", "n_classes", "noise", "centers", "weights",
                                            "n_informative", "random_state", "bogus"]))  # fmt: skip
                options[key] = draw(st.integers(min_value=-5, max_value=300) | json_values)
        elif action == "estimator":
            data["estimator"] = draw(st.sampled_from(NAMES) | st.lists(st.sampled_from(NAMES), max_size=3))
        elif action == "scoring":
            data["scoring"] = draw(st.sampled_from(SCORERS) | st.lists(st.sampled_from(SCORERS), max_size=3))
        elif action == "cv":
            data["cv"] = draw(st.integers(min_value=-2, max_value=200) | json_values)
    return data


# --- the properties ---------------------------------------------------------------------------------


def plan_or_spec_error(data: Any) -> Plan | None:
    """parse_spec + the guards + validate_spec; None for a SpecError, the Plan otherwise."""
    try:
        parsed = spec.parse_spec(data)
        assert isinstance(parsed, SearchSpec)
        guards.check_size(parsed, 1_000_000)
        guards.check_params_safe(parsed)
        plan = validate_spec(parsed)
    except SpecError as exc:
        assert exc.field and exc.message and str(exc).startswith(exc.field)
        return None
    assert plan.n_candidates >= 1 and plan.task in ("classification", "regression")
    assert spec.parse_spec(plan.spec.to_dict()) == plan.spec  # the stored form reads back the same
    json.dumps(plan.spec.to_dict(), allow_nan=False)  # and it is plain JSON
    return plan


def check_against_data(plan: Plan) -> None:
    """The data-dependent checks search_create makes: folds vs classes, target type, scorers on the target."""
    ds = plan.spec.dataset
    assert ds.name is not None
    try:
        data = datasets.load_builtin(ds.name) if ds.name in datasets.BUILTIN else datasets.generate(ds.name, ds.options)
    except DatasetError:
        return
    try:
        check_data_fits_cv(plan, data)
    except SpecError as exc:
        assert exc.field and exc.message


@fuzz(150)
@given(data=st.dictionaries(spec_keys, json_values, max_size=6) | json_values)
def test_any_json_is_a_plan_or_a_spec_error(data: Any) -> None:
    plan_or_spec_error(data)


@fuzz(250)
@given(data=mutated_specs())
def test_mutated_valid_specs_are_a_plan_or_a_spec_error(data: dict[str, Any]) -> None:
    plan = plan_or_spec_error(data)
    if plan is not None:
        check_against_data(plan)


# --- CSV files ----------------------------------------------------------------------------------------

CELLS = ["1", "0", "-2.5", "1e3", "nan", "NaN", "inf", "-inf", "", " ", "abc", "yes", "no", '"1,2"', '"x""y"',
         "\x00", "é", "1_000", "0x10", "١", "\u00a0", "1e400", '"', "\r"]  # fmt: skip
HEADER_NAMES = ["a", "b", "y", "label", "", " y ", "y", "x,1", "é"]


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str]:
    header = draw(st.lists(st.sampled_from(HEADER_NAMES) | st.text(max_size=4), min_size=0, max_size=5))
    width = max(1, len(header))
    rows = draw(
        st.lists(st.lists(st.sampled_from(CELLS) | st.text(max_size=5), min_size=width - 1, max_size=width + 1),
                 max_size=12)
    )  # fmt: skip
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = sep.join(",".join(r) for r in [header, *rows]) + draw(st.sampled_from(["", sep, sep * 3]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    content = text.encode(encoding, errors="replace")
    target = draw(st.sampled_from(["y", "label", "a", "", "missing"]) | st.text(max_size=3))
    return content, target


def read_or_dataset_error(content: bytes, target: str) -> datasets.Data | None:
    try:
        data = datasets.read_csv(content, target)
    except DatasetError as exc:
        assert str(exc)
        return None
    assert data.X.dtype == np.float64 and np.isfinite(data.X).all()
    assert data.X.shape == (data.n_samples, len(data.feature_names)) and data.n_samples >= 1
    assert data.y.shape == (data.n_samples,) and data.target_name == target and target not in data.feature_names
    if data.y.dtype.kind == "f":
        assert all(math.isfinite(v) for v in data.y.tolist())
    return data


@fuzz(200)
@given(content=st.binary(max_size=300), target=st.sampled_from(["y", "a", ""]) | st.text(max_size=3))
def test_any_bytes_are_a_data_set_or_a_dataset_error(content: bytes, target: str) -> None:
    read_or_dataset_error(content, target)


@fuzz(300)
@given(file=csv_files())
def test_generated_csv_files_are_a_data_set_or_a_dataset_error(file: tuple[bytes, str]) -> None:
    read_or_dataset_error(*file)


@fuzz(100)
@given(file=csv_files(), name=st.sampled_from(["data.csv", "DATA.CSV", "data.txt", "a b.csv", ".csv"]))
def test_the_upload_form_answers_every_file_with_a_form_error_or_a_data_set(file: tuple[bytes, str], name: str) -> None:
    content, target = file
    upload = SimpleUploadedFile(name, content, content_type="text/csv")
    form = DatasetUploadForm({"target": target, "name": ""}, {"file": upload})
    if form.is_valid():
        assert isinstance(form.cleaned_data["data"], datasets.Data) and form.cleaned_data["content"] == content
    else:
        assert set(form.errors) <= {"file", "target", "name"} and all(form.errors.values())


# --- the new-search form ----------------------------------------------------------------------------

json_texts = st.one_of(
    json_values.map(json.dumps), st.text(max_size=20), st.sampled_from(["", "{", "[1,", "NaN", "{}"]),
    mutated_specs().map(lambda s: json.dumps(s.get("param_grid", {}))),
)  # fmt: skip


@pytest.mark.django_db
@fuzz(60)
@given(
    estimator=st.sampled_from(["SVC", "Ridge", "StandardScaler>SVC", "KNeighborsClassifier", "os.system"]),
    params=json_texts, grid=json_texts, options=json_texts,
    kind=st.sampled_from(["builtin", "generator"]), cv=st.sampled_from(["2", "3", "1", "x", "", "1000"]),
    n_jobs=st.sampled_from(["-1", "0", "2", "99999", "a"]), scoring=st.sampled_from(SCORERS),
)  # fmt: skip
def test_the_search_form_answers_with_field_errors_or_a_plan(
    estimator: str, params: str, grid: str, options: str, kind: str, cv: str, n_jobs: str, scoring: str
) -> None:
    data = {
        "estimator": estimator, "params": params, "param_grid": grid, "dataset_kind": kind, "builtin": "iris",
        "generator": "make_moons", "generator_options": options, "cv_splits": cv, "n_jobs": n_jobs,
        "scoring": [scoring],
    }  # fmt: skip
    form = SearchForm(data, owner=None)
    if form.is_valid():
        assert form.plan is not None
    else:
        assert form.errors and all(form.errors.values())

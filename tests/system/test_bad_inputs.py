"""One table of bad inputs, each thrown at every entry point that can take it: the `runsearch` command (a
JSON spec file), the new-search form, the CSV upload form and the admin's actions.

For each row: the answer names the field and says what is wrong; the command exits with status 2 and
raises nothing but its one-line `CommandError` (anything else would be a traceback); the web answers
with a form error (400 for the search form, the re-rendered page for the upload form); and nothing is
left behind: no search queued or running, no work unit, no broker message, no stored data set.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from search.models import Dataset, ScalingStudy, Search, Status, WorkUnit
from search.services.datasets import dataset_upload
from tests.conftest import create_search, manage, queued_messages

pytestmark = pytest.mark.django_db

GOOD = {"name": "bad-input", "estimator": "SVC", "dataset": "wine", "cv": 4, "param_grid": {"C": [1, 10]}}
FORM = {
    "name": "bad-input", "estimator": "SVC", "preprocessing": "", "params": "", "param_grid": '{"C": [1, 10]}',
    "dataset_kind": "builtin", "builtin": "wine", "generator": "make_classification", "generator_options": "",
    "cv_splits": "4", "n_jobs": "-1",
}  # fmt: skip
CSV_SPEC = {"estimator": "LogisticRegression", "cv": 2}
GOOD_CSV = b"a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
ONE_CLASS = b"a,b,y\n1,2,0\n3,4,0\n5,6,0\n"
HUGE_GRID = {"C": list(range(1, 1001)), "gamma": [i / 1000 for i in range(1, 301)]}  # 300,000 × 4 folds
DEEP = [[[[[[[[[[1]]]]]]]]]]
NO_GRID = {k: v for k, v in GOOD.items() if k != "param_grid"}
SLOW = {"C": {"distribution": "studentized_range", "args": [3, 10]}}  # about 60 ms a draw
FAST = {
    "C": {"distribution": "loguniform", "args": [0.01, 100]},
    "gamma": {"distribution": "loguniform", "args": [0.001, 1]},
}
LISTS = {k: list(range(1, 1001)) for k in ("C", "gamma", "tol", "degree", "coef0", "cache_size", "max_iter")}
TARGETS = {"n_samples": 100, "n_features": 2, "n_targets": 10_000_000}  # 8 GB of targets
LOW_RANK = {"n_samples": 5000, "n_features": 2000, "effective_rank": 10}  # 47 s in two QR decompositions
CHOICE = "Select a valid choice"


@dataclass(frozen=True)
class Bad:
    """One bad input. `cli` is a spec (or raw file text) for runsearch, `form` changes to the search form,
    `csv` a file given to runsearch (as `dataset.csv`) and, with `upload`, to the upload form."""

    id: str
    message: str  # in every answer, unless `web_message` says otherwise for the web
    cli: Any = None
    cli_field: str = ""  # the message starts with "<cli_field>: "
    form: dict[str, Any] | None = None
    form_field: str = ""
    web_message: str = ""
    csv: bytes | None = None
    target: str = "y"
    upload: bool = False
    upload_field: str = "file"
    form_csv: bytes | None = None  # an uploaded data set the search form then uses
    settings: dict[str, Any] = field(default_factory=dict)


def spec(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def form(**changes: Any) -> dict[str, Any]:
    return changes


BAD = [
    # --- estimators --------------------------------------------------------------------------------------
    Bad("unknown-estimator", "unknown estimator 'SVCC'", spec(estimator="SVCC"), "estimator",
        form(estimator="SVCC"), "estimator", CHOICE),
    Bad("estimator-import-path", "unknown estimator 'sklearn.svm.SVC'", spec(estimator="sklearn.svm.SVC"),
        "estimator", form(estimator="sklearn.svm.SVC"), "estimator", CHOICE),
    Bad("estimator-os-system", "unknown estimator 'os.system'", spec(estimator="os.system"), "estimator",
        form(estimator="os.system"), "estimator", CHOICE),
    Bad("estimator-not-a-string", "expected a class name such as 'SVC'", spec(estimator=3), "estimator"),
    Bad("last-step-a-transformer", "the last step must be a classifier or regressor",
        spec(estimator="StandardScaler"), "estimator", form(estimator="StandardScaler"), "estimator", CHOICE),
    Bad("first-step-a-classifier", "steps before the last must be transformers",
        spec(estimator=["SVC", "LogisticRegression"]), "estimator[0]",
        form(preprocessing="SVC", estimator="LogisticRegression"), "preprocessing", CHOICE),
    # --- parameters -------------------------------------------------------------------------------------
    Bad("unknown-grid-parameter", "SVC has no parameter 'gama'. Did you mean gamma",
        spec(param_grid={"gama": [1]}), "param_grid.gama", form(param_grid='{"gama": [1]}'), "param_grid"),
    Bad("unknown-fixed-parameter", "SVC has no parameter 'colour'", spec(params={"colour": 1}), "params.colour",
        form(params='{"colour": 1}'), "params"),
    Bad("value-out-of-range", "The 'C' parameter of SVC must be a float in the range (0.0, inf]. Got -1 instead",
        spec(param_grid={"C": [-1]}), "param_grid.C", form(param_grid='{"C": [-1]}'), "param_grid"),
    Bad("value-wrong-type", "The 'kernel' parameter of SVC must be a str among",
        spec(param_grid={"kernel": [3]}), "param_grid.kernel", form(param_grid='{"kernel": [3]}'), "param_grid"),
    Bad("fixed-value-invalid", "The 'kernel' parameter of SVC must be a str among",
        spec(params={"kernel": "cubic"}), "params", form(params='{"kernel": "cubic"}'), "params"),
    Bad("params-not-an-object", "expected an object of fixed parameters, got list", spec(params=[1]), "params",
        form(params="[1]"), "params"),
    Bad("pipeline-memory-path", "caching fitted steps in a directory is not allowed",
        spec(estimator=["StandardScaler", "SVC"], params={"memory": "/tmp/cache"}), "params.memory",
        form(estimator="StandardScaler>SVC", params='{"memory": "/tmp/cache"}'), "params"),
    Bad("pipeline-step-replaced", "would replace a pipeline step",
        spec(estimator=["StandardScaler", "SVC"], param_grid={"svc": [1]}), "param_grid.svc",
        form(estimator="StandardScaler>SVC", param_grid='{"svc": [1]}'), "param_grid"),
    # --- grids ------------------------------------------------------------------------------------------
    Bad("grid-values-not-a-list", "Parameter grid for parameter 'C' needs to be a list",
        spec(param_grid={"C": 1}), "param_grid", form(param_grid='{"C": 1}'), "param_grid"),
    Bad("grid-empty-values", "Parameter grid for parameter 'C' need to be a non-empty sequence",
        spec(param_grid={"C": []}), "param_grid", form(param_grid='{"C": []}'), "param_grid"),
    Bad("grid-empty-list", "expected an object or a non-empty list of objects", spec(param_grid=[]),
        "param_grid", form(param_grid="[]"), "param_grid"),
    Bad("grid-a-string", "expected an object or a non-empty list of objects", spec(param_grid="C=1"),
        "param_grid", form(param_grid='"C=1"'), "param_grid"),
    Bad("grid-list-of-numbers", "expected an object of parameter lists, got int", spec(param_grid=[1]),
        "param_grid[0]", form(param_grid="[1]"), "param_grid"),
    Bad("grid-nan", "nan is not allowed; use a finite number", '{"estimator": "SVC", "dataset": "wine", '
        '"param_grid": {"C": [NaN]}}', "param_grid.C[0]", form(param_grid='{"C": [NaN]}'), "param_grid"),
    Bad("grid-object-value", "objects are not allowed as parameter values", spec(param_grid={"C": [{"a": 1}]}),
        "param_grid.C[0]", form(param_grid='{"C": [{"a": 1}]}'), "param_grid"),
    Bad("grid-nested-too-deep", "lists nested more than 8 deep are not allowed", spec(param_grid={"C": DEEP}),
        "param_grid.C" + "[0]" * 8, form(param_grid=json.dumps({"C": DEEP})), "param_grid"),
    Bad("grid-over-the-limit", "the grid has 1,200,000 fits (candidates × folds: 300,000 × 4); the limit is "
        "1,000,000 (FANOUT_MAX_FITS)", spec(param_grid=HUGE_GRID), "param_grid",
        form(param_grid=json.dumps(HUGE_GRID)), "param_grid"),
    Bad("grid-one-bad-value-among-many", "The 'C' parameter of SVC must be a float in the range (0.0, inf]. Got -1",
        spec(param_grid={"C": [*range(1, 50_001), -1]}), "param_grid.C",
        form(param_grid=json.dumps({"C": [*range(1, 50_001), -1]})), "param_grid"),
    Bad("grid-over-a-lower-limit", "the grid has 16 fits (candidates × folds: 4 × 4); the limit is 10 "
        "(FANOUT_MAX_FITS)", spec(param_grid={"C": [1, 10, 100, 1000]}), "param_grid",
        form(param_grid='{"C": [1, 10, 100, 1000]}'), "param_grid", settings={"FANOUT_MAX_FITS": 10}),
    Bad("folds-over-the-limit", "the grid has 4,000,000 fits (candidates × folds: 2 × 2,000,000)",
        spec(cv=2_000_000), "cv.n_splits"),
    # --- malformed JSON ---------------------------------------------------------------------------------
    Bad("json-truncated", "invalid JSON at line 1 column", '{"estimator": "SVC", "param_grid": {"C": [1,',
        "spec.json", form(param_grid='{"C": [1,'), "param_grid"),
    Bad("json-huge-number", "unreadable JSON: Exceeds the limit", '{"n_jobs": ' + "1" * 5000 + "}",
        "spec.json", form(params='{"C": ' + "1" * 5000 + "}"), "params"),
    Bad("json-nested-thousands-deep", "unreadable JSON", "[" * 100_000, "spec.json",
        form(param_grid="[" * 100_000), "param_grid"),
    Bad("json-empty-list-of-specs", "the list of specs is empty", [], "spec.json"),
    Bad("json-not-an-object", "expected a JSON object, got int", [3], "spec"),
    # --- unknown and missing keys -------------------------------------------------------------------------
    Bad("unknown-key", "unknown key; allowed keys:", spec(colour="red"), "colour"),
    Bad("unknown-dataset-key", "unknown key; allowed keys: csv, id, name, options, target",
        spec(dataset={"name": "wine", "rows": 5}), "dataset.rows"),
    Bad("unknown-cv-key", "unknown key; allowed keys: groups, n_splits, random_state, shuffle, splits",
        spec(cv={"n_splits": 3, "folds": 2}), "cv.folds"),
    Bad("missing-estimator", "is required", {"dataset": "wine"}, "estimator"),
    Bad("name-too-long", "expected a string of at most 200 characters", spec(name="x" * 201), "name",
        form(name="x" * 201), "name", "Ensure this value has at most 200 characters"),
    # --- scorers ----------------------------------------------------------------------------------------
    Bad("scorer-unknown", "unknown scorer 'accurasy'. Did you mean accuracy", spec(scoring="accurasy"),
        "scoring", form(scoring="accurasy"), "scoring", CHOICE),
    Bad("scorer-regression-on-classifier", "'r2' is a regression scorer and SVC is a classification estimator",
        spec(scoring="r2"), "scoring", form(scoring="r2"), "scoring"),
    Bad("scorer-classification-on-regressor", "'accuracy' is a classification scorer and Ridge is a regression",
        spec(estimator="Ridge", dataset="diabetes", param_grid={}, scoring="accuracy"), "scoring",
        form(estimator="Ridge", builtin="diabetes", param_grid="", scoring="accuracy"), "scoring"),
    Bad("scorer-binary-on-three-classes", "it is for two classes and this target has 3: use one of f1_macro",
        spec(scoring="f1"), "scoring", form(scoring="f1"), "scoring"),
    Bad("scorer-log-on-negative-targets", "'neg_mean_squared_log_error' cannot score this data set's target",
        spec(estimator="Ridge", dataset="make_regression", param_grid={}, scoring="neg_mean_squared_log_error"),
        "scoring", form(estimator="Ridge", dataset_kind="generator", generator="make_regression", param_grid="",
                        scoring="neg_mean_squared_log_error"), "scoring"),
    Bad("refit-not-a-metric", "'balanced_accuracy' is not one of the metrics accuracy, f1_macro",
        spec(scoring=["accuracy", "f1_macro"], refit="balanced_accuracy"), "refit",
        form(scoring=["accuracy", "f1_macro"], refit="balanced_accuracy"), "refit"),
    Bad("refit-not-a-bool-or-metric", "expected true, false or the name of one of the metrics, got 3",
        spec(refit=3), "refit"),
    # --- the held-out split -----------------------------------------------------------------------------
    Bad("holdout-not-an-object", "expected an object such as", spec(holdout="25%"), "holdout"),
    Bad("holdout-unknown-key", "unknown key; allowed keys: random_state, stratify, test_size",
        spec(holdout={"test_size": 0.25, "shuffle": True}), "holdout.shuffle"),
    Bad("holdout-test-size-zero", "expected a fraction between 0 and 1 (such as 0.25) or a number of rows",
        spec(holdout={"test_size": 0}), "holdout.test_size", form(holdout_test_size="0"), "holdout_test_size"),
    Bad("holdout-test-size-text", "got 'a quarter'", spec(holdout={"test_size": "a quarter"}), "holdout.test_size",
        form(holdout_test_size="a quarter"), "holdout_test_size"),
    Bad("holdout-every-row", "cannot hold out 178 of 178 rows", spec(holdout={"test_size": 178}), "holdout.test_size",
        form(holdout_test_size="178"), "holdout_test_size"),
    Bad("holdout-too-few-rows-for-the-folds", "holding out 176 of 178 rows leaves too few",
        spec(holdout={"test_size": 176}), "holdout.test_size", form(holdout_test_size="176"), "holdout_test_size"),
    Bad("holdout-too-few-rows-for-the-classes", "should be greater or equal to the number of classes = 3",
        spec(holdout={"test_size": 2, "stratify": True}), "holdout.stratify",
        form(holdout_test_size="2", holdout_stratify="on"), "holdout_stratify"),
    Bad("holdout-stratify-a-regressor", "stratifies by class, so only for classifiers; Ridge is a regression estimator",
        spec(estimator="Ridge", dataset="diabetes", param_grid={}, holdout={"test_size": 0.2, "stratify": True}),
        "holdout.stratify"),
    Bad("holdout-seed-null", "every machine must hold out the same rows", spec(holdout={"random_state": None}),
        "holdout.random_state"),
    # --- folds ------------------------------------------------------------------------------------------
    Bad("folds-above-smallest-class", "60 stratified folds need at least 60 rows of every class; the smallest "
        "class has 48", spec(cv=60), "cv.n_splits", form(cv_splits="60"), "cv_splits"),
    Bad("folds-above-rows", "20 folds need at least 20 rows; the data set has 10",
        spec(estimator="Ridge", param_grid={}, cv=20, dataset={"name": "make_regression", "options":
             {"n_samples": 10}}), "cv.n_splits",
        form(estimator="Ridge", param_grid="", cv_splits="20", dataset_kind="generator", generator="make_regression",
             generator_options='{"n_samples": 10}'), "cv_splits"),
    Bad("folds-below-two", "expected an integer of at least 2, got 1", spec(cv=1), "cv.n_splits",
        form(cv_splits="1"), "cv_splits", "Ensure this value is greater than or equal to 2"),
    Bad("seed-without-shuffle", "has no effect unless shuffle is true", spec(cv={"n_splits": 4, "random_state": 3}),
        "cv.random_state", form(cv_random_state="3"), "cv_random_state"),
    Bad("seed-negative", "expected an integer between 0 and 2**32 - 1 or null, got -1",
        spec(cv={"n_splits": 4, "shuffle": True, "random_state": -1}), "cv.random_state",
        form(cv_shuffle="on", cv_random_state="-1"), "cv_random_state"),
    # --- processes --------------------------------------------------------------------------------------
    Bad("n-jobs-zero", "expected a non-zero integer", spec(n_jobs=0), "n_jobs", form(n_jobs="0"), "n_jobs"),
    Bad("n-jobs-fork-bomb", "from -256 to 256", spec(n_jobs=100_000), "n_jobs", form(n_jobs="100000"), "n_jobs"),
    Bad("n-jobs-above-the-setting", "expected a non-zero integer from -256 to 256 (-1 = every core; the limit is "
        "FANOUT_MAX_N_JOBS), got 1024", spec(n_jobs=1024), "n_jobs", form(n_jobs="1024"), "n_jobs"),
    Bad("estimator-own-n-jobs", "Fanout sets the processes (one per fit); use the search's n_jobs",
        spec(estimator="RandomForestClassifier", param_grid={}, params={"n_jobs": -1}), "params.n_jobs",
        form(estimator="RandomForestClassifier", param_grid="", params='{"n_jobs": -1}'), "params"),
    Bad("estimator-own-n-jobs-in-a-grid", "Fanout sets the processes (one per fit); use the search's n_jobs",
        spec(estimator="RandomForestClassifier", param_grid={"n_jobs": [1, 4]}), "param_grid.n_jobs",
        form(estimator="RandomForestClassifier", param_grid='{"n_jobs": [1, 4]}'), "param_grid"),
    # --- halving: the factor, the rounds, every round's fits ----------------------------------------------
    Bad("halving-factor-near-one", "expected a number greater than 1, of at least 1.1",
        spec(strategy="halving", halving={"factor": 1.0000000000000002}), "halving.factor",
        form(strategy="halving", halving_factor="1.0000000000000002"), "halving_factor"),
    Bad("halving-factor-1.01", "of at least 1.1 (each round keeps 1/factor of the candidates; a factor closer to 1 "
        "makes hundreds of rounds), got 1.01", spec(strategy="halving", halving={"factor": 1.01}), "halving.factor",
        form(strategy="halving", halving_factor="1.01"), "halving_factor"),
    Bad("halving-too-many-rounds", "rounds; the limit is 100. Use a larger factor or fewer candidates.",
        spec(strategy="halving", param_grid={"C": list(range(1, 20_001))}, halving={"factor": 1.1}), "halving.factor",
        form(strategy="halving", param_grid=json.dumps({"C": list(range(1, 20_001))}), halving_factor="1.1"),
        "halving_factor"),
    Bad("halving-rounds-over-the-limit", "fits in all (candidates per round: 8, 4, 2; × 4 folds); the limit is 40 "
        "(FANOUT_MAX_FITS)", spec(strategy="halving", param_grid={"C": list(range(1, 9))}, halving={"factor": 2}),
        "halving.factor", form(strategy="halving", param_grid=json.dumps({"C": list(range(1, 9))}), halving_factor="2"),
        "halving_factor", settings={"FANOUT_MAX_FITS": 40}),
    Bad("halving-min-resources-superscript", "expected a positive integer, 'exhaust' or 'smallest', got '²'",
        spec(strategy="halving", halving={"min_resources": "²"}), "halving.min_resources",
        form(strategy="halving", halving_min_resources="²"), "halving_min_resources"),
    # --- sampled candidates: fast distributions, a deadline ------------------------------------------------
    Bad("random-slow-distribution", "'studentized_range' samples too slowly to draw candidates from; use one of",
        {**NO_GRID, "strategy": "random", "n_iter": 100_000, "param_distributions": SLOW}, "param_distributions.C",
        form(strategy="random", n_iter="100000", param_distributions=json.dumps(SLOW)), "param_distributions"),
    Bad("random-sampling-too-slow", "drawing 240,000 candidates stopped after 1 s with",
        {**NO_GRID, "strategy": "random", "n_iter": 240_000, "param_distributions": FAST}, "n_iter",
        form(strategy="random", n_iter="240000", param_distributions=json.dumps(FAST)), "n_iter"),
    Bad("random-lists-beyond-an-index", "the lists make a grid of 1e+21 combinations, more than can be sampled from",
        {**NO_GRID, "strategy": "random", "n_iter": 5, "param_distributions": LISTS}, "param_distributions",
        form(strategy="random", n_iter="5", param_distributions=json.dumps(LISTS)), "param_distributions"),
    # --- data sets named in the spec --------------------------------------------------------------------
    Bad("dataset-unknown", "unknown data set 'irises'", spec(dataset="irises"), "dataset.name",
        form(builtin="irises"), "builtin", CHOICE),
    Bad("classifier-on-continuous-target", "SVC is a classifier and this data set's target is continuous",
        spec(dataset="diabetes"), "dataset", form(builtin="diabetes"), "builtin"),
    Bad("generator-bad-option-value", "The 'n_samples' parameter of make_moons must be an int in the range",
        spec(dataset={"name": "make_moons", "options": {"n_samples": -1}}), "dataset.options",
        form(dataset_kind="generator", generator="make_moons", generator_options='{"n_samples": -1}'),
        "generator_options"),
    Bad("generator-unknown-option", "unknown option(s) 'n_sample' for make_moons",
        spec(dataset={"name": "make_moons", "options": {"n_sample": 5}}), "dataset.options",
        form(dataset_kind="generator", generator="make_moons", generator_options='{"n_sample": 5}'),
        "generator_options"),
    Bad("generator-inconsistent-options", "Number of informative, redundant and repeated features must sum",
        spec(dataset={"name": "make_classification", "options": {"n_features": 2}}), "dataset.options",
        form(dataset_kind="generator", generator_options='{"n_features": 2}'), "generator_options"),
    Bad("generator-too-large", "would generate 100,000,000 × 20 = 2,000,000,000 values; the limit is 50,000,000",
        spec(dataset={"name": "make_classification", "options": {"n_samples": 100_000_000}}), "dataset.options",
        form(dataset_kind="generator", generator_options='{"n_samples": 100000000}'), "generator_options"),
    Bad("generator-targets-too-large", "make_regression would generate 1,020,000,200 values (X: 100 × 2, y: 100 × "
        "10,000,000, coefficients: 2 × 10,000,000)", {**NO_GRID, "estimator": "Ridge", "dataset":
        {"name": "make_regression", "options": TARGETS}}, "dataset.options",
        form(estimator="Ridge", param_grid="", dataset_kind="generator", generator="make_regression",
             generator_options=json.dumps(TARGETS)), "generator_options"),
    Bad("generator-too-many-centres", "make_blobs would build centers = 100,000,000 clusters, one at a time",
        spec(dataset={"name": "make_blobs", "options": {"centers": 100_000_000}}), "dataset.options",
        form(dataset_kind="generator", generator="make_blobs", generator_options='{"centers": 100000000}'),
        "generator_options"),
    Bad("generator-low-rank-too-slow", "to build a low-rank 5,000 × 2,000 matrix for effective_rank",
        {**NO_GRID, "estimator": "Ridge", "dataset": {"name": "make_regression", "options": LOW_RANK}},
        "dataset.options", form(estimator="Ridge", param_grid="", dataset_kind="generator", generator="make_regression",
                                generator_options=json.dumps(LOW_RANK)), "generator_options"),
    Bad("generator-seed-null", "null draws different rows in every process that builds the data",
        spec(dataset={"name": "make_classification", "options": {"random_state": None}}),
        "dataset.options.random_state",
        form(dataset_kind="generator", generator_options='{"random_state": null}'), "generator_options"),
    # --- explicit splits, group folds and uploaded data sets by id (the spec only: the form offers neither) ----
    Bad("splits-with-n-splits", "cannot be given with splits", spec(cv={"splits": [[[0, 1], [2]]], "n_splits": 2}),
        "cv.n_splits"),
    Bad("splits-empty", "is empty; give at least one [train_indices, test_indices] pair", spec(cv={"splits": []}),
        "cv.splits"),
    Bad("splits-not-pairs", "expected a pair [train_indices, test_indices] of lists, got a list of 3",
        spec(cv={"splits": [[[0, 1], [2]], [[0], [1], [2]]]}), "cv.splits[1]"),
    Bad("splits-negative-index", "the test part holds -1; indices are row numbers",
        spec(cv={"splits": [[[0, 1], [-1]]]}), "cv.splits[0]"),
    Bad("splits-row-in-both-parts", "row 1 is in both the train and the test part",
        spec(cv={"splits": [[[0, 1], [1, 2]]]}), "cv.splits[0]"),
    Bad("splits-beyond-the-rows", "fold 0 names row 178, but cross-validation sees 178 rows (0 to 177)",
        spec(cv={"splits": [[[0, 1, 60, 61, 130, 131], [178]]]}), "cv.splits"),
    Bad("splits-beyond-the-training-rows", "fold 0 names row 100, but cross-validation sees 100 rows (0 to 99), "
        "after 78 held out", spec(cv={"splits": [[list(range(60)), [100]]]}, holdout={"test_size": 78}),
        "cv.splits"),
    Bad("groups-without-groups", "this data set has no groups", spec(cv={"n_splits": 3, "groups": True}),
        "cv.groups"),
    Bad("groups-shuffled", "remove shuffle", spec(cv={"n_splits": 3, "groups": True, "shuffle": True}), "cv.groups"),
    Bad("dataset-id-without-an-owner", "this search has no owner (runsearch: --owner USERNAME)",
        spec(dataset={"id": 1}), "dataset.id"),
    Bad("dataset-id-not-positive", "expected the positive integer id of one of your data sets, got 0",
        spec(dataset={"id": 0}), "dataset.id"),
    Bad("dataset-id-with-a-target", "an uploaded data set is named by its id alone",
        spec(dataset={"id": 1, "target": "y"}), "dataset.target"),
    # --- CSV files: runsearch's dataset.csv and the upload form ---------------------------------------------
    Bad("csv-empty", "the file needs a header row and at least one data row", csv=b"", upload=True),
    Bad("csv-header-only", "the file needs a header row and at least one data row", csv=b"a,b,y\n", upload=True),
    Bad("csv-headerless", "holds numbers, not column names; add a header row", csv=b"1,2,0\n3,4,1\n", upload=True),
    Bad("csv-not-utf8", "the file is not UTF-8 text (byte 6", csv=b"a,b,y\n\xff\xfe,1,0\n", upload=True),
    Bad("csv-binary", "the file holds NUL bytes", csv=b"a,b,y\n\x00\x01,2,0\n", upload=True),
    Bad("csv-missing-target", "target column 'label' not in the header; columns: a, b, y", csv=GOOD_CSV,
        target="label", upload=True, upload_field="target"),
    Bad("csv-duplicate-target", "the header names column 'y' 2 times", csv=b"a,y,y\n1,0,0\n2,1,1\n", upload=True),
    Bad("csv-non-numeric-feature", "column 'b' is not numeric (line 3: 'red'); features must be numbers",
        csv=b"a,b,y\n1,2,0\n3,red,1\n", upload=True),
    Bad("csv-nan-feature", "column 'a' has a missing or infinite value on line 2 ('NaN')",
        csv=b"a,b,y\nNaN,2,0\n3,4,1\n", upload=True),
    Bad("csv-infinite-feature", "column 'b' has a missing or infinite value on line 3 ('inf')",
        csv=b"a,b,y\n1,2,0\n3,inf,1\n", upload=True),
    Bad("csv-empty-cell", "column 'a' has an empty (missing) value on line 3", csv=b"a,b,y\n1,2,0\n,4,1\n",
        upload=True),
    Bad("csv-missing-target-value", "the target column 'y' has a missing or infinite value on line 3",
        csv=b"a,b,y\n1,2,0\n3,4,\n", upload=True),
    Bad("csv-ragged-row", "line 3 has 2 fields, the header has 3", csv=b"a,b,y\n1,2,0\n3,4\n", upload=True),
    Bad("csv-only-the-target", "the file has no feature columns besides the target", csv=b"y\n0\n1\n", upload=True),
    Bad("csv-field-too-large", "the file is not valid CSV: field larger than field limit",
        csv=b'a,b,y\n"' + b"1" * 200_000 + b'",2,0\n', upload=True),
    Bad("csv-missing-file", "cannot read", {**CSV_SPEC, "dataset": {"csv": "missing.csv", "target": "y"}},
        "dataset.csv"),
    Bad("csv-endless-device", "'/dev/zero' is not a regular file",
        {**CSV_SPEC, "dataset": {"csv": "/dev/zero", "target": "y"}}, "dataset.csv"),
    Bad("csv-over-the-size-limit", "the limit is 1 MB (FANOUT_MAX_UPLOAD_MB)",
        csv=b"a,b,y\n" + b"1,2,0\n3,4,1\n" * 90_000, upload=True, settings={"FANOUT_MAX_UPLOAD_MB": 1}),
    Bad("csv-single-class", "the target has a single class; a classifier needs at least two",
        cli_field="dataset", csv=ONE_CLASS, form=form(cv_splits="2"), form_csv=ONE_CLASS, form_field="uploaded"),
    Bad("csv-text-target-on-regressor", "a regressor needs a numeric target; this target holds text labels",
        cli={**CSV_SPEC, "estimator": "Ridge"}, cli_field="dataset", csv=b"a,b,y\n1,2,no\n3,4,yes\n5,6,no\n7,8,yes\n",
        form=form(estimator="Ridge", param_grid=""), form_csv=b"a,b,y\n1,2,no\n3,4,yes\n5,6,no\n7,8,yes\n",
        form_field="uploaded"),
    Bad("csv-folds-above-smallest-class", "3 stratified folds need at least 3 rows of every class",
        cli={**CSV_SPEC, "cv": 3}, cli_field="cv.n_splits", csv=GOOD_CSV, form=form(cv_splits="3", param_grid=""),
        form_csv=GOOD_CSV, form_field="cv_splits"),
]  # fmt: skip


@pytest.fixture
def user() -> User:
    return User.objects.create_user("owner")  # no password: hashing one costs a second per test


@pytest.fixture
def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_nothing_started() -> None:
    assert not Search.objects.active().exists()
    assert WorkUnit.objects.count() == 0 and queued_messages() == 0


def run_cli(tmp_path: Path, bad: Bad) -> str:
    """runsearch on a spec file; only its one-line CommandError may come out (anything else is a traceback)."""
    data: Any = bad.cli
    if bad.csv is not None:
        (tmp_path / "data.csv").write_bytes(bad.csv)
        data = {**(data or CSV_SPEC), "dataset": {"csv": "data.csv", "target": bad.target}}
    path = tmp_path / "spec.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(CommandError) as info:
        call_command("runsearch", str(path), "--no-wait", stdout=io.StringIO(), stderr=io.StringIO())
    assert info.value.returncode == 2
    return str(info.value)


def post_form(web: Client, user: User, bad: Bad) -> None:
    data: dict[str, Any] = {**FORM, **(bad.form or {})}
    if bad.form_csv is not None:
        dataset, _ = dataset_upload(owner=user, name="data.csv", content=bad.form_csv, target="y")
        data.update(dataset_kind="upload", uploaded=str(dataset.pk))
    response = web.post(reverse("search-new"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    message = bad.web_message or bad.message
    assert bad.form_field in errors and message in " ".join(errors[bad.form_field]), errors
    assert escape(message) in response.content.decode()  # shown on the page, next to the field
    assert f'value="{data["name"]}"' in response.content.decode()  # what was typed is kept


def post_upload(web: Client, bad: Bad) -> None:
    assert bad.csv is not None
    file = SimpleUploadedFile("data.csv", bad.csv, content_type="text/csv")
    response = web.post(reverse("dataset-upload"), {"name": "", "target": bad.target, "file": file})
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["form"].errors
    assert bad.upload_field in errors and bad.message in " ".join(errors[bad.upload_field]), errors
    assert escape(bad.message) in response.content.decode()
    assert Dataset.objects.count() == 0


def test_the_table_is_large_and_distinct() -> None:
    assert len(BAD) >= 40 and len({b.id for b in BAD}) == len(BAD)
    assert len(
        {(json.dumps(b.cli, sort_keys=True), b.csv, b.target, str(b.form), str(b.settings)) for b in BAD}
    ) == len(BAD)


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_input_gets_a_clear_answer_everywhere(
    bad: Bad, tmp_path: Path, web: Client, user: User, settings: Any
) -> None:
    for name, value in bad.settings.items():
        setattr(settings, name, value)
    answered = 0
    if bad.cli is not None or bad.csv is not None:
        message = run_cli(tmp_path, bad)
        field = bad.cli_field or "dataset.csv"
        assert f"{field}: " in message and bad.message in message, message
        assert "\n" not in message and str(tmp_path / "spec.json") in message
        assert Dataset.objects.count() == 0  # the command's transaction stored nothing
        assert_nothing_started()
        answered += 1
    if bad.form is not None or bad.form_csv is not None:
        post_form(web, user, bad)
        assert Dataset.objects.count() == (bad.form_csv is not None)  # only the upload the form picked
        assert_nothing_started()
        answered += 1
    if bad.upload:
        post_upload(web, bad)
        assert_nothing_started()
        answered += 1
    assert answered >= 1


# --- the real command line: exit status 2, one line on stderr, no traceback -----------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "bad",
    [
        b
        for b in BAD
        if b.id
        in (
            "grid-over-the-limit",
            "json-nested-thousands-deep",
            "generator-bad-option-value",
            "halving-factor-near-one",
            "random-slow-distribution",
            "generator-targets-too-large",
        )
    ],
    ids=lambda b: b.id,
)
def test_the_command_line_exits_2_without_a_traceback(bad: Bad, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(bad.cli if isinstance(bad.cli, str) else json.dumps(bad.cli))
    out = manage("runsearch", str(path), "--no-wait", timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert out.stderr.startswith(f"CommandError: {path}") and bad.message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert Search.objects.count() == 0


# --- the admin: its actions rerun stored specs; one that no longer validates gets a message -------------
@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", None))
    return client


ADMIN_BAD = [
    ("param_grid", {"C": [-1]}, "param_grid.C: The 'C' parameter of SVC must be a float"),
    ("estimator", "os.system", "estimator: unknown estimator 'os.system'"),
    ("cv", {"n_splits": 60, "shuffle": False, "random_state": None}, "cv.n_splits: 60 stratified folds"),
]


@pytest.mark.parametrize(("key", "value", "message"), ADMIN_BAD, ids=[k for k, _, _ in ADMIN_BAD])
def test_admin_actions_on_a_spec_that_no_longer_validates(staff: Client, key: str, value: Any, message: str) -> None:
    search = create_search({**GOOD, "name": "stored", "cv": 3})
    Search.objects.filter(pk=search.pk).update(spec={**search.spec, key: value}, status=Status.DONE)
    WorkUnit.objects.all().delete()
    for action in ("rerun", "scaling_study"):
        response = staff.post(
            reverse("admin:search_search_changelist"), {"action": action, "_selected_action": [search.pk]}, follow=True
        )
        assert response.status_code == 200
        shown = [str(m) for m in get_messages(response.wsgi_request)]
        assert any(message in m for m in shown), shown
    assert (
        Search.objects.count() == 1 and Search.objects.get().status == Status.DONE and not ScalingStudy.objects.exists()
    )
    assert_nothing_started()

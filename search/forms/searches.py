"""The new-search form: web input → a spec dict → the same validation as every other entry point.

Errors from the engine (`SpecError`, with a dotted field path) are put next to the form field they
belong to, and every entered value is kept.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django import forms

from search.engine import datasets, registry
from search.engine.spec import SpecError
from search.engine.validate import Plan, scorer_task
from search.models import Dataset, Search
from search.services.searches import plan_search

PIPELINES = [
    ("StandardScaler", "LogisticRegression"), ("StandardScaler", "SVC"), ("StandardScaler", "KNeighborsClassifier"),
    ("StandardScaler", "MLPClassifier"), ("StandardScaler", "Ridge"), ("StandardScaler", "SVR"),
    ("StandardScaler", "KNeighborsRegressor"), ("PCA", "LogisticRegression"), ("MinMaxScaler", "SVC"),
]  # fmt: skip
SEP = ">"


def estimator_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    known = set(registry.names())
    return [
        ("Classifiers", [(n, n) for n in registry.names("classifier")]),
        ("Regressors", [(n, n) for n in registry.names("regressor")]),
        ("Pipelines", [(SEP.join(p), " → ".join(p)) for p in PIPELINES if set(p) <= known]),
    ]


def _json_field(label: str, help_text: str, rows: int = 4) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "false"}),
    )


class SearchForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, help_text="A label for the list (optional).")
    estimator = forms.ChoiceField(help_text="A scikit-learn classifier or regressor, or a ready-made pipeline.")
    preprocessing = forms.ChoiceField(
        required=False, label="Preprocessing step", help_text="Optional transformer in front of the estimator."
    )
    params = _json_field("Fixed parameters", 'JSON object set before the grid, e.g. {"random_state": 0}.', 2)
    param_grid = _json_field(
        "Parameter grid",
        'JSON, as GridSearchCV takes it: {"C": [0.1, 1, 10]} or a list of such objects. Pipeline steps are '
        'prefixed: {"svc__C": [1, 10]}.',
        6,
    )
    strategy = forms.ChoiceField(
        label="Search", initial="grid", widget=forms.RadioSelect, required=False,
        choices=[("grid", "Grid: every combination"), ("random", "Random: sampled candidates"),
                 ("halving", "Successive halving: many candidates on a small budget, the best on more"),
                 ("halving_random", "Successive halving over sampled candidates")],
    )  # fmt: skip
    param_distributions = _json_field(
        "Parameter distributions",
        "JSON, as RandomizedSearchCV takes it: lists are sampled uniformly, objects name a scipy.stats "
        'distribution, e.g. {"C": {"distribution": "loguniform", "args": [0.001, 1000]}, "kernel": ["rbf", "linear"]}.',
        6,
    )
    n_iter = forms.IntegerField(label="Candidates to sample", initial=10, min_value=1, required=False)
    random_state = forms.IntegerField(
        label="Seed", required=False, min_value=0, help_text="Random search: the sampling seed; halving: the "
        "subsampling seed. Empty: 0, so a rerun draws the same candidates.",
    )  # fmt: skip
    halving_factor = forms.FloatField(
        label="Factor", initial=3, required=False, help_text="Each round keeps 1/factor of the candidates."
    )
    halving_resource = forms.CharField(
        label="Resource", initial="n_samples", required=False,
        help_text="n_samples (rows) or a budget parameter of the estimator, e.g. n_estimators or max_iter.",
    )  # fmt: skip
    halving_min_resources = forms.CharField(
        label="Min resources", required=False, widget=forms.TextInput(attrs={"placeholder": "default"}),
        help_text="A number, exhaust or smallest. Empty: exhaust for a grid, smallest for sampled candidates "
        "(scikit-learn's defaults).",
    )  # fmt: skip
    halving_max_resources = forms.CharField(
        label="Max resources", initial="auto", required=False, help_text="A number, or auto (every row)."
    )
    halving_aggressive = forms.BooleanField(label="Aggressive elimination", required=False)
    halving_n_candidates = forms.CharField(
        label="Candidates to sample", initial="exhaust", required=False,
        help_text="A number, or exhaust: as many as let the last round use every row (max ÷ min resources).",
    )  # fmt: skip
    dataset_kind = forms.ChoiceField(
        label="Data", choices=[("builtin", "Bundled"), ("generator", "Generated"), ("upload", "Uploaded file")],
        initial="builtin", widget=forms.RadioSelect,
    )  # fmt: skip
    builtin = forms.ChoiceField(required=False, label="Bundled data set", choices=[(n, n) for n in datasets.BUILTIN])
    generator = forms.ChoiceField(required=False, choices=[(n, n) for n in datasets.GENERATORS])
    generator_options = _json_field("Generator options", 'JSON object, e.g. {"n_samples": 1000, "noise": 0.1}.', 2)
    uploaded = forms.ModelChoiceField(
        queryset=Dataset.objects.none(), required=False, label="Uploaded data set", empty_label="— choose —"
    )
    cv_splits = forms.IntegerField(label="Folds", initial=5, min_value=2, max_value=100)
    cv_shuffle = forms.BooleanField(label="Shuffle before splitting", required=False)
    cv_random_state = forms.IntegerField(label="Shuffle seed", required=False)
    scoring = forms.MultipleChoiceField(
        required=False, help_text="None chosen: the estimator's own score (accuracy or R²). The first picks the best.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )  # fmt: skip
    refit = forms.ChoiceField(required=False, label="Best by", help_text="With several metrics: which one ranks.")
    skip_refit = forms.BooleanField(
        required=False, label="Skip the refit (no model)",
        help_text="By default the best candidate is refitted on every training row and kept as the search's model.",
    )  # fmt: skip
    holdout_test_size = forms.CharField(
        required=False, label="Hold out",
        help_text="Rows set aside before anything else and scored with the model: a fraction (0.25) or a row "
        "count (50). Empty: none.",
    )  # fmt: skip
    holdout_random_state = forms.IntegerField(required=False, initial=0, label="Hold-out seed")
    holdout_stratify = forms.BooleanField(required=False, label="Stratify the hold-out by class")
    n_jobs = forms.IntegerField(initial=-1, help_text="Processes per work unit; -1 uses every core of the machine.")
    return_train_score = forms.BooleanField(required=False, label="Also score the training folds")

    FIELD_FOR = {
        "name": "name", "estimator": "estimator", "params": "params", "param_grid": "param_grid",
        "dataset.options": "generator_options", "cv.n_splits": "cv_splits", "cv.shuffle": "cv_shuffle",
        "cv.random_state": "cv_random_state", "scoring": "scoring", "refit": "refit", "n_jobs": "n_jobs",
        "return_train_score": "return_train_score", "strategy": "strategy",
        "param_distributions": "param_distributions", "n_iter": "n_iter", "random_state": "random_state",
        "halving.factor": "halving_factor", "halving.resource": "halving_resource",
        "halving.min_resources": "halving_min_resources", "halving.max_resources": "halving_max_resources",
        "halving.aggressive_elimination": "halving_aggressive", "halving.n_candidates": "halving_n_candidates",
        "halving": "halving_factor", "holdout.test_size": "holdout_test_size",
        "holdout.random_state": "holdout_random_state", "holdout.stratify": "holdout_stratify",
        "holdout": "holdout_test_size",
    }  # fmt: skip

    def __init__(self, *args: Any, owner: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.plan: Plan | None = None
        choice = self._choice_field
        choice("estimator").choices = estimator_choices()
        choice("preprocessing").choices = [("", "— none —"), *[(n, n) for n in registry.names("transformer")]]
        uploads = Dataset.objects.filter(owner=owner, kind__in=[Dataset.Kind.CSV, Dataset.Kind.NPZ]).defer("content")
        self.fields["uploaded"].queryset = uploads  # type: ignore[attr-defined]
        from sklearn.metrics import get_scorer_names

        scorers = [(n, n) for n in get_scorer_names() if scorer_task(n) != "clustering"]
        choice("scoring").choices = scorers
        choice("refit").choices = [("", "— the first metric —"), *scorers]

    def _choice_field(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def _json(self, name: str, default: Any) -> Any:
        raw = (self.cleaned_data.get(name) or "").strip()
        if not raw:
            return default
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.add_error(name, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        except (ValueError, RecursionError) as exc:  # a number of 4,300+ digits, lists nested thousands deep
            self.add_error(name, f"unreadable JSON: {exc or 'nested too deeply'}")
        else:
            if value is not None:
                return value
            self.add_error(name, "null is not allowed here; leave the field empty for the default")
        return None  # the field's error is set

    def _dataset(self) -> dict[str, Any] | None:
        kind = self.cleaned_data.get("dataset_kind")
        if kind == "builtin":
            return {"name": self.cleaned_data.get("builtin") or "iris"}
        if kind == "generator":
            options = self._json("generator_options", {})
            return None if options is None else {"name": self.cleaned_data.get("generator"), "options": options}
        ds = self.cleaned_data.get("uploaded")
        if ds is None:
            self.add_error(
                "uploaded",
                "choose one of your uploaded CSV data sets or .npz arrays (upload one on the Data sets page)",
            )
            return None
        if ds.kind == Dataset.Kind.NPZ:
            return {"id": ds.pk}
        return {"csv": ds.local_path(), "target": ds.source["target"]}

    def spec(self) -> dict[str, Any] | None:
        """The spec dict, or None when a field could not even be parsed (its error is already set)."""
        d = self.cleaned_data
        steps = [s for s in [d.get("preprocessing"), *str(d.get("estimator", "")).split(SEP)] if s]
        params, grid, dataset = self._json("params", {}), self._json("param_grid", {}), self._dataset()
        if params is None or grid is None or dataset is None:
            return None
        scoring = list(d.get("scoring") or [])
        cv: dict[str, Any] = {"n_splits": d.get("cv_splits") or 5, "shuffle": bool(d.get("cv_shuffle"))}
        if d.get("cv_random_state") is not None:
            cv["random_state"] = d["cv_random_state"]
        spec = {
            "name": d.get("name", ""), "estimator": steps if len(steps) > 1 else steps[0], "params": params,
            "param_grid": grid, "dataset": dataset, "cv": cv,
            "scoring": scoring if len(scoring) > 1 else (scoring[0] if scoring else None),
            "refit": False if d.get("skip_refit") else ((d.get("refit") or True) if len(scoring) > 1 else True),
            "n_jobs": d.get("n_jobs") if d.get("n_jobs") is not None else -1,
            "return_train_score": bool(d.get("return_train_score")),
        }  # fmt: skip
        if holdout := self._holdout():
            spec["holdout"] = holdout
        return self._with_strategy(spec)

    def _holdout(self) -> dict[str, Any] | None:
        d = self.cleaned_data
        text = (d.get("holdout_test_size") or "").strip()
        if not text:
            return None
        size: float | int | str = text
        if text.isascii() and text.isdigit():
            size = int(text)
        else:
            with contextlib.suppress(ValueError):  # not a number: the spec check names the field and what is allowed
                size = float(text)
        seed = d.get("holdout_random_state")
        return {
            "test_size": size,
            "random_state": 0 if seed is None else seed,
            "stratify": bool(d.get("holdout_stratify")),
        }

    def _with_strategy(self, spec: dict[str, Any]) -> dict[str, Any] | None:
        d = self.cleaned_data
        strategy = d.get("strategy") or "grid"
        if strategy == "grid":
            return spec
        sampled = strategy in ("random", "halving_random")
        spec["strategy"] = "halving" if strategy == "halving_random" else strategy
        if d.get("random_state") is not None:
            spec["random_state"] = d["random_state"]
        if sampled:
            distributions = self._json("param_distributions", None)
            if distributions is None:
                if "param_distributions" not in self.errors:
                    what = "a random search" if strategy == "random" else "halving over sampled candidates"
                    self.add_error("param_distributions", f"{what} needs parameter distributions")
                return None
            del spec["param_grid"]
            spec["param_distributions"] = distributions
        if strategy == "random":
            spec["n_iter"] = d.get("n_iter") or 10
            return spec

        def budget(value: str | None, default: str) -> int | str:
            text = (value or "").strip() or default
            # ASCII digits only: "²" is a digit to str.isdigit() but not to int(); the spec check names it
            return int(text) if text.isascii() and text.isdigit() else text

        # HalvingRandomSearchCV's defaults differ from HalvingGridSearchCV's: min_resources "smallest"
        min_default = "smallest" if sampled else "exhaust"
        min_given = (d.get("halving_min_resources") or "").strip()
        spec["halving"] = {
            "factor": d["halving_factor"] if d.get("halving_factor") is not None else 3,
            "resource": (d.get("halving_resource") or "").strip() or "n_samples",
            "min_resources": budget(min_given, min_default),
            "max_resources": budget(d.get("halving_max_resources"), "auto"),
            "aggressive_elimination": bool(d.get("halving_aggressive")),
        }
        if sampled:
            spec["halving"]["n_candidates"] = budget(d.get("halving_n_candidates"), "exhaust")
        factor = spec["halving"]["factor"]
        if float(factor).is_integer():
            spec["halving"]["factor"] = int(factor)
        return spec

    def field_for(self, spec_field: str) -> str | None:
        for prefix in sorted(self.FIELD_FOR, key=len, reverse=True):
            if spec_field == prefix or spec_field.startswith((prefix + ".", prefix + "[")):
                return self.FIELD_FOR[prefix]
        if spec_field.startswith("dataset"):
            return {"builtin": "builtin", "generator": "generator"}.get(
                self.cleaned_data.get("dataset_kind", ""), "uploaded"
            )
        return None

    def add_spec_error(self, exc: SpecError) -> None:
        field = self.field_for(exc.field)
        self.add_error(field, exc.message if field else str(exc))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        spec = self.spec()
        if spec is not None:
            try:
                self.plan = plan_search(spec)
            except SpecError as exc:
                self.add_spec_error(exc)
        return cleaned


def initial_from(search: Search) -> dict[str, Any]:
    """Form values that recreate `search` (Duplicate and edit)."""
    spec = search.stored
    steps = list(spec.estimator)
    estimator, preprocessing = SEP.join(steps), ""
    if len(steps) > 1 and tuple(steps) not in PIPELINES:
        estimator, preprocessing = SEP.join(steps[1:]), steps[0]
    ds, cv, grid = spec.dataset, spec.cv, list(spec.param_grid) or [{}]
    initial: dict[str, Any] = {
        "name": f"{spec.name or 'search'} (copy)", "estimator": estimator, "preprocessing": preprocessing,
        "params": json.dumps(spec.params) if spec.params else "",
        "param_grid": json.dumps(grid[0] if len(grid) == 1 else grid),
        "cv_splits": cv.n_splits, "cv_shuffle": cv.shuffle, "cv_random_state": cv.random_state,
        "scoring": list(spec.scoring) if isinstance(spec.scoring, tuple) else ([spec.scoring] if spec.scoring else []),
        "refit": spec.refit if isinstance(spec.refit, str) else "", "skip_refit": spec.refit is False,
        "n_jobs": spec.n_jobs, "return_train_score": spec.return_train_score,
    }  # fmt: skip
    if (ho := spec.holdout) is not None:
        initial.update(
            holdout_test_size=str(ho["test_size"]), holdout_random_state=ho["random_state"],
            holdout_stratify=ho["stratify"],
        )  # fmt: skip
    initial.update(strategy=spec.strategy, random_state=spec.random_state)
    if dists := spec.param_distributions:  # random search, or halving over sampled candidates
        initial.update(param_grid="", param_distributions=json.dumps(dists[0] if len(dists) == 1 else list(dists)))
    if spec.strategy == "random":
        initial.update(n_iter=spec.n_iter)
    if (h := spec.halving) is not None:
        initial.update(
            halving_factor=h.factor, halving_resource=h.resource, halving_min_resources=str(h.min_resources),
            halving_max_resources=str(h.max_resources), halving_aggressive=h.aggressive_elimination,
        )  # fmt: skip
        if dists:
            initial.update(strategy="halving_random", halving_n_candidates=str(h.n_candidates or "exhaust"))
    if "csv" in ds or "id" in ds:
        initial.update(dataset_kind="upload", uploaded=search.dataset_id)
    elif ds["name"] in datasets.GENERATORS:
        initial.update(
            dataset_kind="generator", generator=ds["name"], generator_options=json.dumps(ds.get("options", {}))
        )
    else:
        initial.update(dataset_kind="builtin", builtin=ds["name"])
    return initial

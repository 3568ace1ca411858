"""The typed view of a stored spec: what `Search.spec` holds once the row is read.

A search's spec is stored as the canonical JSON of a validated `SearchSpec` (`SearchSpec.to_dict`), with a
CSV data set replaced by the stored row's name and id (a data set named `{"id": N}` stays so; `Search.dataset` is
that row). It was validated when it was stored, so this view
reads it without validating again; keys that rows stored by earlier versions lack take their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .folds import CVSpec
from .halving import HalvingSpec


@dataclass(frozen=True)
class StoredSpec:
    name: str
    estimator: tuple[str, ...]
    dataset: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    param_grid: tuple[dict[str, list[Any]], ...] = ()
    param_distributions: tuple[dict[str, Any], ...] = ()
    cv: CVSpec = field(default_factory=CVSpec)
    scoring: str | tuple[str, ...] | None = None
    refit: bool | str = True  # False: no model; a metric name: which one picks the best
    n_jobs: int = -1
    return_train_score: bool = False
    strategy: str = "grid"
    n_iter: int = 10
    random_state: int | None = None
    halving: HalvingSpec | None = None
    holdout: dict[str, Any] | None = None  # HoldoutSpec.to_dict(): test_size, random_state, stratify

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> StoredSpec:
        estimator = spec["estimator"]
        scoring = spec.get("scoring")
        return cls(
            name=spec.get("name") or "",
            estimator=tuple(estimator) if isinstance(estimator, list) else (estimator,),
            dataset=dict(spec["dataset"]),
            params=dict(spec.get("params") or {}),
            param_grid=tuple(spec.get("param_grid") or ()),
            param_distributions=tuple(spec.get("param_distributions") or ()),
            cv=CVSpec.from_dict(spec["cv"]),
            scoring=tuple(scoring) if isinstance(scoring, list) else scoring,
            refit=True if spec.get("refit") is None else spec["refit"],  # null: rows stored before refit existed
            n_jobs=spec.get("n_jobs", -1),
            return_train_score=bool(spec.get("return_train_score")),
            strategy=spec.get("strategy", "grid"),
            n_iter=spec.get("n_iter", 10),
            random_state=spec.get("random_state"),
            halving=HalvingSpec(**spec["halving"]) if spec.get("halving") else None,
            holdout=dict(spec["holdout"]) if spec.get("holdout") else None,
        )

    @property
    def scoring_label(self) -> str | None:
        """The one scorer's name when a single scorer was named (what the `score` metric means)."""
        return self.scoring if isinstance(self.scoring, str) else None

    @property
    def varied(self) -> set[str]:
        """Every parameter name the grid or the distributions vary."""
        return {k for g in (self.param_grid or self.param_distributions) for k in g}

    @property
    def scoring_json(self) -> str | list[str] | None:
        """`scoring` as the runner's Job takes it (JSON: a list for several scorers)."""
        return list(self.scoring) if isinstance(self.scoring, tuple) else self.scoring

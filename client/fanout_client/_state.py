"""What a search object keeps between `fit` and loading its results, and small helpers around the server's
answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import FanoutSpecError
from ._http import API_PREFIX, api_base
from ._spec import EstimatorSpec

FITTED = ("cv_results_", "best_index_", "best_params_", "best_score_", "best_estimator_", "refit_time_",
          "n_splits_", "multimetric_", "scorer_", "feature_names_in_")  # fmt: skip


@dataclass(frozen=True)
class State:
    """What finishing a search needs beyond the constructor's parameters."""

    url: str
    spec: EstimatorSpec
    seed: int | None  # the random search's seed (drawn here when random_state was None)
    feature_names: np.ndarray | None
    object_labels: bool = False  # y came as objects (strings): classes_ are given back as objects too


def items(answer: Any) -> list[Any]:
    return list(answer["items"]) if isinstance(answer, dict) else list(answer)


def page_url(url: str, search: dict[str, Any]) -> str:
    """The search's page in the web UI: the API's `url` (absolute), else where the pages put it."""
    root = api_base(url).removesuffix(API_PREFIX)
    page = search.get("url")
    if isinstance(page, str) and page:
        return root + page if page.startswith("/") else page
    return f"{root}/searches/{search['id']}/"


def in_user_terms(exc: FanoutSpecError, spec: EstimatorSpec) -> FanoutSpecError:
    """The server's 400 with the user's step names in place of make_pipeline's."""

    steps = () if spec.single_step else spec.steps  # one step is sent as its estimator: no prefix to rename

    def rename(text: str) -> str:
        for user, server in steps:
            text = re.sub(rf"(?<![\w-]){re.escape(server)}__", f"{user}__", text)
        return text

    field = rename(exc.field) if exc.field else None
    if field and spec.single_step:  # `param_grid.C` of the step's own estimator → `param_grid.clf__C`
        field = re.sub(
            r"^((?:params|param_grid|param_distributions)(?:\[\d+\])?)\.", rf"\1.{spec.steps[0][0]}__", field
        )
    return FanoutSpecError(exc.status, rename(exc.detail), field)

"""plan_search applies the operator's limits from the settings."""

from __future__ import annotations

from typing import Any

import pytest

from search.engine.spec import SpecError
from search.services.searches import plan_search

SPEC = {"estimator": "LogisticRegression", "param_grid": {"C": [1.0]}, "dataset": {"name": "iris"}, "cv": 2}


def test_n_jobs_above_the_operators_limit_is_refused_on_its_field(settings: Any) -> None:
    settings.FANOUT_MAX_N_JOBS = 4
    assert plan_search({**SPEC, "n_jobs": 4}).spec.n_jobs == 4
    with pytest.raises(SpecError) as err:
        plan_search({**SPEC, "n_jobs": 8})
    assert err.value.field == "n_jobs" and "4" in err.value.message

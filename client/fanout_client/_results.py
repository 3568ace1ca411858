"""The server's `cv_results` JSON → `cv_results_` exactly as scikit-learn builds it.

The JSON (search.engine.aggregate.cv_results) has scikit-learn's keys and order, lists for arrays, `null`
for NaN and the candidates' parameters as JSON dicts. Scores and times become float64 arrays (null → NaN),
ranks int32 arrays, `param_<name>` masked arrays built from `params` as `BaseSearchCV._format_results` builds
them, so every dtype equals GridSearchCV's. When the caller has the candidates as scikit-learn made them
locally (`ParameterGrid` over the user's own grid), the rows are put in that order and those very values are
used (tuples stay tuples, numpy scalars stay numpy scalars).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.ma import MaskedArray

MORE_RESULTS = ("iter", "n_resources")  # successive halving's extra keys, which scikit-learn puts first


def masked_params(candidate_params: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, MaskedArray]]:
    """`param_<name>` masked arrays, as scikit-learn 1.9's `_yield_masked_array_for_each_param` makes them:
    masked where a candidate lacks the parameter; object dtype for strings and for sequences."""
    n_candidates = len(candidate_params)
    param_results: defaultdict[str, dict[int, Any]] = defaultdict(dict)
    for cand_idx, params in enumerate(candidate_params):
        for name, value in params.items():
            param_results[f"param_{name}"][cand_idx] = value
    for key, param_result in param_results.items():
        param_list = list(param_result.values())
        try:
            arr = np.array(param_list)
        except ValueError:  # lists of different lengths, such as [[1], [2, 3]]
            arr_dtype = np.dtype(object)
        else:  # strings, and same-length sequences (a 2-D array), are kept as objects in a 1-D array
            arr_dtype = arr.dtype if arr.dtype.kind != "U" and arr.ndim == 1 else np.dtype(object)
        ma = MaskedArray(np.empty(n_candidates, dtype=arr_dtype), mask=True)
        for index, value in param_result.items():
            ma[index] = value  # setting a value unmasks it
        yield key, ma


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, allow_nan=False)


def match_rows(server: Sequence[Mapping[str, Any]], local: Sequence[Mapping[str, Any]]) -> list[int] | None:
    """For each local candidate (as JSON, with the server's keys), the index of the server's equal candidate;
    None unless the two are the same candidates (duplicates matched in order)."""
    if len(server) != len(local):
        return None
    rows: defaultdict[str, deque[int]] = defaultdict(deque)
    for i, params in enumerate(server):
        rows[_canonical(params)].append(i)
    order = []
    for params in local:
        try:
            queue = rows.get(_canonical(params))
        except (TypeError, ValueError):
            return None
        if not queue:
            return None
        order.append(queue.popleft())
    return order


def reorder(raw: Mapping[str, Sequence[Any]], order: Sequence[int]) -> dict[str, list[Any]]:
    """Every column's rows in `order` (ranks stay right: each is a property of its candidate)."""
    return {key: [values[i] for i in order] for key, values in raw.items()}


def _store_again(results: dict[str, Any], kind: str, metric: str, error_score: float) -> None:
    """A failed fit scored `error_score` instead of NaN, then `mean_`, `std_` (and `rank_`) computed again with
    BaseSearchCV._format_results' own numpy calls, so they equal scikit-learn's bit for bit."""
    n_splits = sum(1 for key in results if re.fullmatch(rf"split\d+_{kind}_{re.escape(metric)}", key))
    split_keys = [f"split{k}_{kind}_{metric}" for k in range(n_splits)]
    array = np.column_stack([results[key] for key in split_keys]).astype(np.float64)
    array[np.isnan(array)] = error_score
    for k, key in enumerate(split_keys):
        results[key] = array[:, k].copy()
    means = np.average(array, axis=1)
    results[f"mean_{kind}_{metric}"] = means
    results[f"std_{kind}_{metric}"] = np.sqrt(np.average((array - means[:, np.newaxis]) ** 2, axis=1))
    if kind == "test":
        results[f"rank_{kind}_{metric}"] = rank(means)


def rank(means: np.ndarray) -> np.ndarray:
    """BaseSearchCV's ranks: NaN means tie with the worst, all NaN → all 1."""
    from scipy.stats import rankdata

    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    ranks: np.ndarray = rankdata(-filled, method="min").astype(np.int32, copy=False)
    return ranks


def cv_results(
    raw: Mapping[str, Sequence[Any]], params: Sequence[Mapping[str, Any]], error_score: float | None = None
) -> dict[str, Any]:
    """`cv_results_` from the server's JSON columns (rows in the order of `params`) and the candidates. The
    server scores a failed fit NaN (error_score=np.nan); another `error_score` replaces the NaN split scores
    and the means, stds and ranks are computed again, as scikit-learn computes them."""
    if len(params) != len(raw["params"]):
        raise ValueError(f"{len(params)} candidates for {len(raw['params'])} rows of cv_results")
    results: dict[str, Any] = {key: np.asarray(raw[key]) for key in MORE_RESULTS if key in raw}
    placed = False
    for key, values in raw.items():
        if key in MORE_RESULTS:
            continue
        if key == "params" or key.startswith("param_"):
            if not placed:
                results.update(masked_params(params))
                results["params"] = [dict(p) for p in params]
                placed = True
            continue
        results[key] = np.asarray(values, dtype=np.int32) if key.startswith("rank_") else _floats(values)
    if not placed:
        results.update(masked_params(params))
        results["params"] = [dict(p) for p in params]
    means = [key for key in results if re.fullmatch(r"mean_(test|train)_.+", key)]
    for key in means:
        kind, metric = key.split("_", 2)[1:]
        if error_score is not None and not math.isnan(error_score):
            _store_again(results, kind, metric, error_score)
        if not np.all(np.isfinite(results[key])):
            warnings.warn(f"One or more of the {kind} scores are non-finite: {results[key]}", UserWarning, stacklevel=5)
    return results


def user_params(
    server: Sequence[Mapping[str, Any]],
    local: Sequence[Mapping[str, Any]] | None,
    to_server: Callable[[str], str],
    to_user: Callable[[str], str],
    as_json: Callable[[Any], Any],
) -> tuple[list[int], list[dict[str, Any]]]:
    """The row order and the candidates `cv_results_` shows: the local ones (scikit-learn's own order and
    values) when they are the server's candidates, else the server's with the user's keys, sorted as
    ParameterGrid and ParameterSampler sort them."""
    if local is not None:
        try:
            converted = [{to_server(k): as_json(v) for k, v in p.items()} for p in local]
        except Exception:  # noqa: BLE001 - a value that does not convert simply does not match
            converted = None
        order = match_rows(server, converted) if converted is not None else None
        if order is not None:
            return order, [dict(p) for p in local]
    return list(range(len(server))), [dict(sorted((to_user(k), v) for k, v in p.items())) for p in server]


def best_index(results: Mapping[str, Any], metric: str, server_best: int | None) -> int:
    """scikit-learn's choice (the first candidate of rank 1), except that among tied candidates the server's
    choice wins: it is the one the server refitted, so `best_params_` stays `best_estimator_`'s."""
    ranks = results[f"rank_test_{metric}"]
    index = int(ranks.argmin())
    if server_best is not None and ranks[server_best] == ranks[index]:
        return int(server_best)
    return index

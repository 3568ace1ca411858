"""search.charts.accuracy: figure dicts from hand-built candidate rows (no database, no Django)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from search.charts._utils import empty_figure
from search.charts.accuracy import (
    CandidateRow,
    heatmap,
    is_numeric,
    parallel_coordinates,
    param_values,
    score_vs_param,
    train_vs_test,
    value_label,
    varied_params,
)

NAN = float("nan")


def row(
    index: int, mean: float | None, std: float | None = 0.0, rank: int | None = None, **params: Any
) -> CandidateRow:
    return CandidateRow(index=index, params=params, mean=mean, std=std, rank=rank)


def dumps(fig: dict[str, Any] | None) -> str:
    return json.dumps(fig, allow_nan=False)


def trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in fig["data"] if t["name"] == name)


# --- values and labels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("rbf", "rbf"), (None, "None"), (True, "True"), (False, "False"), (0.1, "0.1"), (100, "100"),
        (100.0, "100"), (1e-05, "1e-05"), (-3, "-3"), ([1, "a"], '[1, "a"]'), ({"a": 1}, '{"a": 1}'),
    ],
)  # fmt: skip
def test_value_label(value: Any, label: str) -> None:
    assert value_label(value) == label


def test_param_values_distinct_and_sorted() -> None:
    rows = [row(0, 1.0, C=10), row(1, 1.0, C=0.5), row(2, 1.0, C=10.0), row(3, 1.0, C=2), row(4, 1.0, gamma=1)]
    assert param_values(rows, "C") == [0.5, 2, 10]
    assert param_values(rows, "missing") == []


def test_param_values_mixed_types() -> None:
    values = [None, "rbf", True, 1, [2, 3], "auto", [2, 3], False, 0.5]
    rows = [row(i, 1.0, p=v) for i, v in enumerate(values)]
    # numbers first (numerically), bools not numbers and not merged with 1, the rest by label; lists deduplicated
    assert param_values(rows, "p") == [0.5, 1, False, None, True, [2, 3], "auto", "rbf"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 2], True), ([0.1, 3], True), ([1], False), ([], False), ([True, False], False), ([1, "a"], False),
     ([1, None], False), ([1.0, NAN], False)],
)  # fmt: skip
def test_is_numeric(values: list[Any], expected: bool) -> None:
    assert is_numeric(values) is expected


def test_varied_params() -> None:
    rows = [row(0, 1.0, C=1, kernel="rbf", tol=1e-3), row(1, 1.0, C=2, kernel="rbf", tol=1e-3, gamma=0.1)]
    rows.append(row(2, 1.0, C=1, kernel="linear", tol=1e-3, gamma=1.0))
    assert varied_params(rows) == ["C", "gamma", "kernel"]


# --- score vs parameter -----------------------------------------------------------------------------------------


def svc_rows() -> list[CandidateRow]:
    return [
        row(0, 0.80, 0.01, 4, C=0.01, kernel="rbf"),
        row(1, 0.70, 0.02, 5, C=0.01, kernel="linear"),
        row(2, 0.90, 0.03, 2, C=1, kernel="rbf"),
        row(3, 0.95, 0.04, 1, C=1, kernel="linear"),
        row(4, None, None, None, C=100, kernel="rbf"),
        row(5, NAN, NAN, None, C=100, kernel="linear"),
    ]


def test_score_vs_param_best_average_and_failed() -> None:
    fig = score_vs_param(svc_rows(), "C", "accuracy")
    best, avg = trace(fig, "best candidate"), trace(fig, "average over the other parameters")
    assert best["x"] == avg["x"] == [0.01, 1, 100]
    assert best["y"] == [0.80, 0.95, None]
    assert best["error_y"] == {"type": "data", "array": [0.01, 0.04, None], "visible": True}
    assert best["mode"] == "lines+markers"
    assert avg["y"][:2] == pytest.approx([0.75, 0.925]) and avg["y"][2] is None
    assert avg["line"]["dash"] == "dash"
    layout = fig["layout"]
    assert layout["title"]["text"] == "accuracy vs C"
    assert layout["xaxis"]["type"] == "log" and layout["xaxis"]["title"]["text"] == "C"
    assert layout["hovermode"] == "x unified" and layout["height"] == 360
    dumps(fig)


def test_score_vs_param_ignores_failed_rows_in_aggregates() -> None:
    rows = [row(0, -2.0, 0.5, C=1), row(1, None, None, C=1), row(2, -4.0, 0.1, C=2), row(3, -1.0, 0.2, C=2)]
    fig = score_vs_param(rows, "C", "neg_mean_squared_error")
    assert trace(fig, "best candidate")["y"] == [-2.0, -1.0]
    assert trace(fig, "best candidate")["error_y"]["array"] == [0.5, 0.2]
    assert trace(fig, "average over the other parameters")["y"] == [-2.0, -2.5]


@pytest.mark.parametrize(("values", "axis_type"), [([0.01, 1, 100], "log"), ([1, 2, 3], "linear"), ([1, 50], "linear")])
def test_score_vs_param_numeric_axis(values: list[float], axis_type: str) -> None:
    fig = score_vs_param([row(i, 0.5, C=v) for i, v in enumerate(values)], "C", "accuracy")
    assert fig["layout"]["xaxis"]["type"] == axis_type
    assert fig["data"][0]["x"] == values


def test_score_vs_param_categorical_axis() -> None:
    rows = [row(0, 0.1, p=None), row(1, 0.2, p="rbf"), row(2, 0.3, p=True)]
    fig = score_vs_param(rows, "p", "accuracy")
    assert fig["layout"]["xaxis"]["type"] == "category"
    assert fig["data"][0]["x"] == ["None", "True", "rbf"]
    assert fig["data"][0]["y"] == [0.1, 0.3, 0.2]


# --- heatmap ----------------------------------------------------------------------------------------------------


def test_heatmap_matrix() -> None:
    rows = [*svc_rows(), row(6, 0.99, 0.0, None, C=0.01, kernel="poly"), row(7, 0.85, 0.0, None, C=0.01, kernel="rbf")]
    fig = heatmap(rows, "C", "kernel", "accuracy")
    (hm,) = fig["data"]
    assert hm["type"] == "heatmap" and hm["colorscale"] == "Viridis"
    assert hm["x"] == ["0.01", "1", "100"]
    assert hm["y"] == ["linear", "poly", "rbf"]
    assert hm["z"] == [
        [0.70, 0.95, None],  # linear: C=100 failed (NaN)
        [0.99, None, None],  # poly: only C=0.01 was tried
        [0.85, 0.90, None],  # rbf: best of 0.80 and 0.85; C=100 failed
    ]
    assert hm["texttemplate"] == "%{z:.4f}"
    assert "%{x}" in hm["hovertemplate"] and "%{y}" in hm["hovertemplate"] and "%{z" in hm["hovertemplate"]
    assert fig["layout"]["title"]["text"] == "best accuracy by C × kernel"
    dumps(fig)


def test_heatmap_bins_two_wide_numeric_parameters_to_a_bounded_grid() -> None:
    """100 × 100 values (10,000 candidates): 50 bins of 2 values per axis, each cell the best of its 4 pairs."""
    rows = [row(i, (i % 100 + 1) / 1000 + (i // 100 + 1) / 10, C=i % 100 + 1, gamma=float(i // 100 + 1))
            for i in range(10_000)]  # fmt: skip
    (hm,) = heatmap(rows, "C", "gamma", "accuracy")["data"]
    assert hm["x"] == [f"{2 * i + 1}–{2 * i + 2}" for i in range(50)] and hm["y"] == hm["x"]
    assert len(hm["z"]) == 50 and all(len(line) == 50 for line in hm["z"])
    assert hm["z"][0][0] == pytest.approx(0.002 + 0.2) and hm["z"][49][49] == pytest.approx(0.1 + 10.0)
    assert hm["z"][3][7] == pytest.approx(16 / 1000 + 8 / 10)  # C in 15–16, gamma in 7–8: best is (16, 8)


def test_heatmap_of_a_random_search_stays_bounded_with_distinct_labels() -> None:
    rng = random.Random(0)
    rows = [row(i, rng.random(), C=10 ** rng.uniform(-4, 4), gamma=rng.uniform(0, 1)) for i in range(4000)]
    rows.append(row(4000, 2.0, C=1e-4, gamma=0.999))  # the best candidate
    fig = heatmap(rows, "C", "gamma", "accuracy")
    (hm,) = fig["data"]
    assert len(hm["x"]) == len(set(hm["x"])) == 50 and len(hm["y"]) == len(set(hm["y"])) == 50
    assert len(hm["z"]) == 50 and all(len(line) == 50 for line in hm["z"])
    assert hm["z"][-1][0] == 2.0  # lowest C bin, highest gamma bin
    assert sum(v is not None for line in hm["z"] for v in line) <= 2500
    dumps(fig)


def test_heatmap_keeps_the_most_frequent_categories_and_groups_the_rest() -> None:
    rows: list[CandidateRow] = []
    for k in range(80):  # value k is tried by 80 - k candidates
        rows += [row(len(rows) + n, 0.5 + k / 1000, k=f"v{k:02d}", s="a" if n % 2 else "b") for n in range(80 - k)]
    (hm,) = heatmap(rows, "k", "s", "accuracy")["data"]
    assert hm["x"] == [f"v{k:02d}" for k in range(49)] + ["(other)"] and hm["y"] == ["a", "b"]
    assert hm["z"][0][-1] == pytest.approx(0.5 + 78 / 1000)  # the best of v49…v79 with s="a"
    assert hm["z"][0][0] == pytest.approx(0.5)


def test_heatmap_bins_numbers_and_keeps_none_apart() -> None:
    rows = [row(i, float(i), depth=i or None, C=i % 2) for i in range(101)]
    (hm,) = heatmap(rows, "depth", "C", "accuracy")["data"]
    assert len(hm["x"]) == 50 and hm["x"][0] == "1–2" and hm["x"][-2:] == ["98–100", "None"]
    assert hm["z"][0][-1] == 0.0 and hm["z"][1][-2] == 99.0  # None (candidate 0); 98–100 with C=1: 99


# --- parallel coordinates ---------------------------------------------------------------------------------------


def test_parallel_coordinates_drops_failed_and_encodes() -> None:
    fig = parallel_coordinates(svc_rows(), ["C", "kernel"], "accuracy")
    (pc,) = fig["data"]
    assert pc["type"] == "parcoords"
    c_dim, kernel_dim, score_dim = pc["dimensions"]
    assert c_dim["label"] == "log10 C" and c_dim["values"] == pytest.approx([-2, -2, 0, 0])  # C=100 only failed
    assert kernel_dim["values"] == [1, 0, 1, 0]
    assert kernel_dim["tickvals"] == [0, 1] and kernel_dim["ticktext"] == ["linear", "rbf"]
    assert score_dim == {"label": "accuracy", "values": [0.80, 0.70, 0.90, 0.95]}
    assert pc["line"]["color"] == [0.80, 0.70, 0.90, 0.95]
    assert pc["line"]["colorscale"] == "Viridis" and pc["line"]["showscale"] is True
    assert fig["layout"]["title"]["text"] == "all candidates: accuracy"
    dumps(fig)


def test_parallel_coordinates_log_dimension() -> None:
    rows = [row(i, 0.5, C=c) for i, c in enumerate([0.01, 1, 100])]
    (dim, _) = parallel_coordinates(rows, ["C"], "accuracy")["data"][0]["dimensions"]
    assert dim["label"] == "log10 C"
    assert dim["values"] == pytest.approx([-2, 0, 2])


def test_parallel_coordinates_missing_param_is_unset() -> None:
    rows = [row(0, 0.5, kernel="linear"), row(1, 0.6, kernel="rbf", gamma=0.1), row(2, 0.7, kernel="rbf", gamma=1)]
    gamma = parallel_coordinates(rows, ["gamma"], "accuracy")["data"][0]["dimensions"][0]
    assert gamma["values"] == [2, 0, 1]
    assert gamma["ticktext"] == ["0.1", "1", "(unset)"]


def test_parallel_coordinates_limit_keeps_best_by_rank() -> None:
    rows = [row(i, float(i), rank=20 - i, C=i) for i in range(20)] + [row(20, None, rank=None, C=99)]
    (pc,) = parallel_coordinates(rows, ["C"], "accuracy", limit=5)["data"]
    assert pc["dimensions"][0]["values"] == [15, 16, 17, 18, 19]
    assert pc["line"]["color"] == [15.0, 16.0, 17.0, 18.0, 19.0]


def test_parallel_coordinates_nothing_succeeded() -> None:
    fig = parallel_coordinates([row(0, None, C=1)], ["C"], "accuracy")
    assert fig["data"] == []
    dumps(fig)


# --- train vs test ----------------------------------------------------------------------------------------------


def test_train_vs_test_without_train_scores() -> None:
    assert train_vs_test(svc_rows(), "accuracy") is None
    assert train_vs_test([CandidateRow(0, {}, 0.5, 0.0, 1, mean_train=NAN)], "accuracy") is None


def test_train_vs_test_points_and_diagonal() -> None:
    rows = [
        CandidateRow(0, {"kernel": "rbf", "C": 1}, 0.80, 0.01, 2, mean_train=0.99, std_train=0.0),
        CandidateRow(1, {"kernel": "linear", "C": 0.1}, 0.85, 0.01, 1, mean_train=0.86, std_train=0.0),
        CandidateRow(2, {"kernel": "poly", "C": 1}, None, None, None, mean_train=0.5),
    ]
    fig = train_vs_test(rows, "accuracy")
    assert fig is not None
    points, diagonal = trace(fig, "candidates"), trace(fig, "train = test")
    assert points["x"] == [0.99, 0.86] and points["y"] == [0.80, 0.85]
    assert points["mode"] == "markers"
    assert points["text"] == ["C=1, kernel=rbf", "C=0.1, kernel=linear"]
    assert diagonal["x"] == diagonal["y"] == [0.80, 0.99]
    assert fig["layout"]["title"]["text"] == "train vs test accuracy (points below the line overfit)"
    dumps(fig)


# --- empty and JSON safety --------------------------------------------------------------------------------------


def test_empty_figure() -> None:
    fig = empty_figure("no results yet")
    assert fig["data"] == []
    (note,) = fig["layout"]["annotations"]
    assert note["text"] == "no results yet" and note["x"] == note["y"] == 0.5 and note["showarrow"] is False
    assert fig["layout"]["xaxis"]["visible"] is False and fig["layout"]["yaxis"]["visible"] is False
    dumps(fig)


def nan_rows() -> list[CandidateRow]:
    inf = float("inf")
    return [
        CandidateRow(0, {"C": 1, "k": "a"}, NAN, NAN, None, mean_train=NAN, std_train=NAN),
        CandidateRow(1, {"C": 2, "k": "b"}, 0.5, NAN, 1, mean_train=0.7, std_train=NAN),
        CandidateRow(2, {"C": NAN, "k": "a"}, inf, -inf, 2, mean_train=inf, std_train=None),
        CandidateRow(3, {"C": inf, "k": None}, 0.4, 0.1, 3, mean_train=0.6, std_train=0.0),
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda rows: score_vs_param(rows, "C", "m"),
        lambda rows: score_vs_param(rows, "k", "m"),
        lambda rows: heatmap(rows, "C", "k", "m"),
        lambda rows: parallel_coordinates(rows, ["C", "k"], "m"),
        lambda rows: train_vs_test(rows, "m"),
        lambda rows: score_vs_param([], "C", "m"),
        lambda rows: heatmap([], "C", "k", "m"),
    ],
)
def test_figures_are_strict_json_with_nan_inputs(build: Any) -> None:
    fig = build(nan_rows())
    assert fig is not None
    text = dumps(fig)
    assert "NaN" not in text and "Infinity" not in text


def test_nan_scores_count_as_failed() -> None:
    fig = score_vs_param(nan_rows(), "k", "m")
    assert fig["data"][0]["x"] == ["None", "a", "b"]
    assert fig["data"][0]["y"] == [0.4, None, 0.5]
    assert fig["data"][0]["error_y"]["array"] == [0.1, None, None]

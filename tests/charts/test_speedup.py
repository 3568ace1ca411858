"""search.charts.speedup: figure dicts from hand-built fit spans (no database, no Django)."""

from __future__ import annotations

import json
import math
from typing import Any

import plotly.graph_objects as go
import pytest

from search.charts._utils import empty_figure
from search.charts.speedup import (
    MAX_BINS,
    busy_fractions,
    lane_name,
    process_busy_figure,
    scaling_figure,
    timeline,
    utilisation_figure,
)
from search.engine.speedup import FitSpan, account, amdahl, projections, utilisation

NAN = float("nan")
T0 = 1_700_000_000.0  # unix seconds of the first fit


def span(host: str, pid: int, start: float, end: float, busy: float | None = None) -> FitSpan:
    """A fit from `start` to `end` seconds after T0."""
    return FitSpan(host, pid, T0 + start, T0 + end, end - start if busy is None else busy)


def valid(fig: dict[str, Any]) -> dict[str, Any]:
    """`fig` after checking it is strict JSON and that plotly accepts every property in it."""
    json.dumps(fig, allow_nan=False)
    go.Figure(fig)
    return fig


def trace(fig: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in fig["data"] if t.get("name") == name)


def title(fig: dict[str, Any]) -> str:
    return str(fig["layout"]["title"]["text"])


# Two processes on "a" (pids 20 and 3) and one on "b"; the search runs from 0 to 10 s.
SPANS = [
    span("b", 7, 1.0, 4.0),
    span("a", 20, 0.0, 2.0),
    span("a", 3, 0.5, 1.5),
    span("a", 20, 5.0, 10.0),
]
LABELS = ["candidate 0, fold 0", "candidate 0, fold 1", "candidate 1, fold 0", "candidate 1, fold 1"]


# --- timeline ---------------------------------------------------------------------------------------------------


def test_lane_name() -> None:
    assert lane_name("box", 42) == "box · pid 42"


def test_timeline_bars_on_sorted_lanes() -> None:
    fig = valid(timeline(SPANS, LABELS))
    (bars,) = fig["data"]
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert bars["y"] == ["b · pid 7", "a · pid 20", "a · pid 3", "a · pid 20"]
    assert bars["base"] == pytest.approx([1.0, 0.0, 0.5, 5.0])
    assert bars["x"] == pytest.approx([3.0, 2.0, 1.0, 5.0])
    # lanes sorted by host, then numerically by pid
    assert fig["layout"]["yaxis"]["categoryarray"] == ["a · pid 3", "a · pid 20", "b · pid 7"]
    assert [row[0] for row in bars["customdata"]] == LABELS
    assert [row[1] for row in bars["customdata"]] == pytest.approx([3.0, 2.0, 1.0, 5.0])
    assert "%{customdata[0]}" in bars["hovertemplate"] and "%{customdata[1]" in bars["hovertemplate"]


def test_timeline_layout() -> None:
    layout = valid(timeline(SPANS, LABELS))["layout"]
    assert layout["title"]["text"] == "timeline: every fit on its process"
    assert layout["xaxis"]["title"]["text"] == "seconds since the first fit"
    assert layout["xaxis"]["range"] == pytest.approx([0.0, 10.0])  # the whole search, idle time included
    assert layout["barmode"] == "overlay"
    assert layout["height"] == 120 + 40 * 3


def test_timeline_height_is_capped() -> None:
    spans = [span("h", pid, 0.0, 1.0) for pid in range(100)]
    assert valid(timeline(spans))["layout"]["height"] == 900


def test_timeline_default_labels() -> None:
    (bars,) = valid(timeline(SPANS))["data"]
    assert [row[0] for row in bars["customdata"]] == ["fit 0", "fit 1", "fit 2", "fit 3"]


def test_timeline_label_count_must_match() -> None:
    with pytest.raises(ValueError):
        timeline(SPANS, LABELS[:2])


def test_timeline_skips_non_finite_spans_and_keeps_labels_aligned() -> None:
    spans = [span("a", 1, 0.0, 1.0), FitSpan("a", 1, NAN, T0 + 2, 1.0), span("a", 1, 2.0, 3.0)]
    (bars,) = valid(timeline(spans, ["x", "y", "z"]))["data"]
    assert [row[0] for row in bars["customdata"]] == ["x", "z"]
    assert bars["base"] == pytest.approx([0.0, 2.0])


def test_timeline_negative_duration_is_clamped() -> None:
    (bars,) = valid(timeline([FitSpan("a", 1, T0 + 1, T0, 0.0), span("a", 1, 0.0, 2.0)]))["data"]
    assert bars["x"] == pytest.approx([0.0, 2.0])


@pytest.mark.parametrize("spans", [[], [FitSpan("a", 1, NAN, NAN, 0.0)]])
def test_timeline_empty(spans: list[FitSpan]) -> None:
    assert timeline(spans) == empty_figure("No fits yet.")


def test_timeline_heatmap_above_limit() -> None:
    # lane 1 busy the whole 0..10 s; lane 2 busy only during the first half, in 10 fits of 0.5 s
    spans = [span("a", 1, 0.0, 10.0)] + [span("a", 2, i * 0.5, (i + 1) * 0.5) for i in range(10)]
    fig = valid(timeline(spans, limit=5))
    (heat,) = fig["data"]
    assert heat["type"] == "heatmap"
    assert title(fig) == "timeline (11 fits, shown as busy fraction per process)"
    assert heat["y"] == ["a · pid 1", "a · pid 2"]
    assert len(heat["x"]) == len(heat["z"][0]) == MAX_BINS <= 300
    assert heat["z"][0] == pytest.approx([1.0] * MAX_BINS)
    assert heat["z"][1] == pytest.approx([1.0] * (MAX_BINS // 2) + [0.0] * (MAX_BINS // 2))
    assert heat["x"][0] == pytest.approx(10.0 / MAX_BINS / 2, abs=1e-6)
    assert heat["x"][-1] == pytest.approx(10.0 - 10.0 / MAX_BINS / 2, abs=1e-6)
    assert heat["zmin"] == 0.0 and heat["zmax"] == 1.0
    assert fig["layout"]["xaxis"]["range"] == pytest.approx([0.0, 10.0])


def test_timeline_at_limit_still_draws_bars() -> None:
    assert valid(timeline(SPANS, limit=len(SPANS)))["data"][0]["type"] == "bar"
    assert valid(timeline(SPANS, limit=len(SPANS) - 1))["data"][0]["type"] == "heatmap"


def test_busy_fractions_partial_bins_and_overlap_clamped() -> None:
    # 4 bins of 1 s over 0..4 s: a fit from 0.5 to 2.25 s, and two overlapping fits on another lane
    spans = [span("a", 1, 0.5, 2.25), span("b", 1, 0.0, 4.0), span("b", 1, 0.0, 1.0)]
    lanes, centres, z = busy_fractions(spans, bins=4)
    assert lanes == ["a · pid 1", "b · pid 1"]
    assert centres == pytest.approx([0.5, 1.5, 2.5, 3.5])
    assert z[0] == pytest.approx([0.5, 1.0, 0.25, 0.0])
    assert z[1] == pytest.approx([1.0, 1.0, 1.0, 1.0])  # a process cannot be more than fully busy
    assert all(0.0 <= v <= 1.0 for row in z for v in row)


def test_busy_fractions_many_fits_never_more_than_300_columns() -> None:
    spans = [span(f"h{i % 3}", i % 7, i * 0.01, i * 0.01 + 0.05) for i in range(5000)]
    fig = valid(timeline(spans))
    (heat,) = fig["data"]
    assert heat["type"] == "heatmap"
    assert len(heat["y"]) == 21  # every (host i % 3, pid i % 7) pair occurs
    assert all(len(row) <= 300 for row in heat["z"])
    assert len(heat["x"]) <= 300


def test_busy_fractions_zero_length_search() -> None:
    lanes, centres, z = busy_fractions([span("a", 1, 0.0, 0.0)], bins=3)
    assert lanes == ["a · pid 1"] and len(centres) == 3
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in z[0])
    assert busy_fractions([]) == ([], [], [])


# --- utilisation ------------------------------------------------------------------------------------------------


def test_utilisation_figure() -> None:
    times, running = utilisation(SPANS, bins=10)
    fig = valid(utilisation_figure(times, running, cores=2))
    line = trace(fig, "fits running")
    assert line["fill"] == "tozeroy"
    assert line["x"] == pytest.approx(times)
    assert line["y"] == pytest.approx([1.5, 2.5, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    cores = trace(fig, "2 cores")
    assert cores["y"] == [2, 2] and cores["line"]["dash"] == "dash"
    assert cores["x"][0] == 0.0 and cores["x"][-1] == pytest.approx(times[-1])
    assert title(fig) == "utilisation over time"
    assert fig["layout"]["yaxis"]["title"]["text"] == "fits running"
    assert fig["layout"]["xaxis"]["title"]["text"] == "seconds since the first fit"


def test_utilisation_figure_non_finite_values_become_null() -> None:
    fig = valid(utilisation_figure([0.5, 1.5], [NAN, 1.0], cores=1))
    assert trace(fig, "fits running")["y"] == [None, 1.0]


def test_utilisation_figure_empty_and_mismatch() -> None:
    assert utilisation_figure([], [], cores=4) == empty_figure("No fits yet.")
    with pytest.raises(ValueError):
        utilisation_figure([1.0], [], cores=4)


# --- busy time per process --------------------------------------------------------------------------------------


def test_process_busy_figure() -> None:
    accounting = account(SPANS)
    fig = valid(process_busy_figure(accounting))
    bars = trace(fig, "busy")
    assert bars["x"] == ["a · pid 3", "a · pid 20", "b · pid 7"]
    assert bars["y"] == pytest.approx([1.0, 7.0, 3.0])
    assert [row[0] for row in bars["customdata"]] == [1, 2, 1]
    (wall,) = fig["layout"]["shapes"]
    assert wall["y0"] == wall["y1"] == pytest.approx(10.0)
    assert wall["line"]["dash"] == "dash" and (wall["xref"], wall["x0"], wall["x1"]) == ("paper", 0, 1)
    assert fig["layout"]["yaxis"]["range"][1] >= 10.0
    assert title(fig) == "busy time per process (wall time dashed)"


def test_process_busy_figure_fully_used_process_reaches_the_wall_line() -> None:
    fig = valid(process_busy_figure(account([span("a", 1, 0.0, 4.0), span("a", 2, 0.0, 1.0)])))
    assert trace(fig, "busy")["y"][0] == fig["layout"]["shapes"][0]["y0"] == pytest.approx(4.0)


def test_process_busy_figure_empty() -> None:
    assert process_busy_figure(account([])) == empty_figure("No fits yet.")
    assert process_busy_figure({}) == empty_figure("No fits yet.")


def test_process_busy_figure_without_finite_wall() -> None:
    accounting = account(SPANS) | {"wall": NAN}
    fig = valid(process_busy_figure(accounting))
    assert "shapes" not in fig["layout"]


# --- scaling ----------------------------------------------------------------------------------------------------

POINTS = [(4, 3.2), (1, 1.0), (2, 1.9)]


def test_scaling_figure_measured_and_ideal() -> None:
    fig = valid(scaling_figure(POINTS, None, cores=4))
    assert [t["name"] for t in fig["data"]] == ["measured", "ideal (linear)"]
    measured = trace(fig, "measured")
    assert measured["x"] == [1, 2, 4] and measured["y"] == pytest.approx([1.0, 1.9, 3.2])
    assert "markers" in measured["mode"] and "lines" in measured["mode"]
    ideal = trace(fig, "ideal (linear)")
    assert ideal["y"] == ideal["x"] and ideal["x"][0] == 1 and ideal["x"][-1] == 4
    assert ideal["line"]["dash"] == "dash"
    layout = fig["layout"]
    assert title(fig) == "measured speedup vs ideal"
    assert layout["xaxis"]["title"]["text"] == "processes" and layout["yaxis"]["title"]["text"] == "speedup"


def test_scaling_figure_amdahl_and_projections() -> None:
    s = 0.1
    fig = valid(scaling_figure(POINTS, s, cores=4))
    curve = trace(fig, "Amdahl fit, serial fraction 0.100")
    assert curve["x"][0] == 1.0 and curve["x"][-1] == pytest.approx(8 * 4)
    assert len(curve["x"]) >= 50  # smooth
    assert curve["y"] == pytest.approx([amdahl(x, s) for x in curve["x"]])
    ideal = trace(fig, "ideal (linear)")
    assert ideal["y"] == ideal["x"] and ideal["x"][-1] == pytest.approx(32)
    projected = trace(fig, "projected")
    assert projected["x"] == [8, 16, 32]
    assert projected["y"] == pytest.approx([projections(s, 4)[n] for n in (8, 16, 32)])
    assert projected["text"][0] == f"{amdahl(8, s):.1f}× at 8 processes"
    assert "text" in projected["mode"] and "markers" in projected["mode"]
    # the y axis shows everything but the ideal line beyond the measured range
    assert fig["layout"]["yaxis"]["range"][1] >= max(curve["y"])
    assert fig["layout"]["xaxis"]["range"][1] >= 32


def test_scaling_figure_curve_reaches_eight_times_the_largest_run() -> None:
    fig = valid(scaling_figure([(1, 1.0), (16, 8.0)], 0.05, cores=4))
    assert trace(fig, "Amdahl fit, serial fraction 0.050")["x"][-1] == pytest.approx(8 * 16)
    assert trace(fig, "projected")["x"] == [8, 16, 32]  # projections stay at multiples of the cores


def test_scaling_figure_text_label_format() -> None:
    fig = valid(scaling_figure([(1, 1.0), (2, 2.0)], 0.0, cores=1))
    assert trace(fig, "projected")["text"] == ["2.0× at 2 processes", "4.0× at 4 processes", "8.0× at 8 processes"]


def test_scaling_figure_non_finite_serial_fraction_is_ignored() -> None:
    fig = valid(scaling_figure(POINTS, NAN, cores=4))
    assert [t["name"] for t in fig["data"]] == ["measured", "ideal (linear)"]


def test_scaling_figure_skips_bad_points() -> None:
    fig = valid(scaling_figure([(2, NAN), (0, 1.0), (2, 1.5), (1, math.inf)], 0.2, cores=2))
    assert trace(fig, "measured")["x"] == [2]


@pytest.mark.parametrize("points", [[], [(2, NAN)]])
def test_scaling_figure_empty(points: list[tuple[int, float]]) -> None:
    assert scaling_figure(points, 0.1, cores=4) == empty_figure("No scaling runs yet.")

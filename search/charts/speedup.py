"""Plotly figures for parallel accounting, as plain dicts that Plotly.js draws (`Plotly.react(div, data, layout)`).

Pure functions over `FitSpan`s and the results of `search.engine.speedup`: no Django, no database, no plotly
objects. Times are shown in seconds since the first fit started. Every returned figure is passed through
`strict_figure`, so `json.dumps(fig, allow_nan=False)` always works (NaN/inf become None).

- `timeline`: every fit as a bar on its process lane (a busy-fraction heatmap when there are too many fits).
- `utilisation_figure`: how many fits ran at once over time, against the number of cores.
- `process_busy_figure`: busy seconds per process against the search's wall time.
- `scaling_figure`: measured speedup vs the ideal, the fitted Amdahl curve and projections to more cores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.charts._utils import Figure, base_layout, empty_figure, finite_or_none, strict_figure
from search.engine.speedup import FitSpan, amdahl, projections

LANE_HEIGHT = 40  # pixels per process lane in the timeline
BASE_HEIGHT = 120
MAX_HEIGHT = 900
MAX_BINS = 300  # time bins of the busy-fraction heatmap
BAR_LIMIT = 3000  # fits drawn as bars at most; more: the busy-fraction heatmap
CURVE_POINTS = 200  # samples of the Amdahl curve
NO_FITS = "No fits yet."


# --- helpers ----------------------------------------------------------------------------------------------------


def lane_name(host: str, pid: int | str) -> str:
    """Display name of a process lane: "host · pid 1234"."""
    return f"{host} · pid {pid}"


def _pid_key(pid: int | str) -> tuple[int, int, str]:
    """Sort key for pids that may be ints or strings (numeric strings sort numerically, first)."""
    text = str(pid)
    digits = text.removeprefix("-")
    return (0, int(text), "") if digits.isascii() and digits.isdigit() else (1, 0, text)


def _lanes(spans: Sequence[FitSpan]) -> list[tuple[str, int]]:
    """Distinct (host, pid) pairs, sorted by host then pid."""
    return sorted({(s.host, s.pid) for s in spans}, key=lambda lane: (lane[0], _pid_key(lane[1])))


def _height(lanes: int) -> int:
    return min(MAX_HEIGHT, BASE_HEIGHT + LANE_HEIGHT * lanes)


# --- timeline ---------------------------------------------------------------------------------------------------


def _valid(spans: Sequence[FitSpan], labels: Sequence[str] | None) -> tuple[list[FitSpan], list[str]]:
    """Spans with finite start and end (end clamped to start) and their labels ("fit <i>" when not given)."""
    if labels is not None and len(labels) != len(spans):
        raise ValueError(f"{len(labels)} labels for {len(spans)} spans")
    names = list(labels) if labels is not None else [f"fit {i}" for i in range(len(spans))]
    kept = [
        (FitSpan(s.host, s.pid, s.start, max(s.start, s.end), s.busy), name)
        for s, name in zip(spans, names, strict=True)
        if finite_or_none(s.start) is not None and finite_or_none(s.end) is not None
    ]
    return [s for s, _ in kept], [name for _, name in kept]


def _bars(spans: Sequence[FitSpan], labels: Sequence[str], t0: float, wall: float) -> Figure:
    """One horizontal bar per fit on its process lane, from its start for its duration."""
    lanes = [lane_name(host, pid) for host, pid in _lanes(spans)]
    durations = [s.end - s.start for s in spans]
    trace = {
        "type": "bar", "orientation": "h", "name": "fits", "showlegend": False,
        "y": [lane_name(s.host, s.pid) for s in spans], "base": [s.start - t0 for s in spans], "x": durations,
        "customdata": [[label, d, s.start - t0] for label, d, s in zip(labels, durations, spans, strict=True)],
        "hovertemplate": "%{customdata[0]}<br>%{customdata[1]:.3f} s (from %{customdata[2]:.3f} s)"
        "<br>%{y}<extra></extra>",
        "marker": {"line": {"width": 0.5, "color": "white"}},
    }  # fmt: skip
    layout = base_layout(
        "timeline: every fit on its process", "seconds since the first fit", "", barmode="overlay",
        height=_height(len(lanes)), bargap=0.25,
    )  # fmt: skip
    layout["xaxis"] |= {"range": [0.0, wall], "zeroline": False}
    layout["yaxis"] |= {"type": "category", "categoryorder": "array", "categoryarray": lanes, "autorange": "reversed"}
    return strict_figure([trace], layout)


def busy_fractions(spans: Sequence[FitSpan], bins: int = MAX_BINS) -> tuple[list[str], list[float], list[list[float]]]:
    """(lane names, bin centres in seconds since the first start, busy fraction [lane][bin] in 0..1).

    A lane's busy fraction in a bin is the part of the bin covered by its fits (overlapping fits count once at most:
    the fraction is clamped to 1)."""
    if not spans or bins < 1:
        return [], [], []
    t0, end = min(s.start for s in spans), max(s.end for s in spans)
    width = max(end - t0, 1e-9) / bins
    lanes = _lanes(spans)
    rows = {lane: [0.0] * bins for lane in lanes}
    for s in spans:
        row = rows[(s.host, s.pid)]
        first, last = min(int((s.start - t0) / width), bins - 1), min(int((s.end - t0) / width), bins - 1)
        for b in range(first, last + 1):
            lo, hi = t0 + b * width, t0 + (b + 1) * width
            row[b] += max(0.0, min(hi, s.end) - max(lo, s.start)) / width
    z = [[min(1.0, v) for v in rows[lane]] for lane in lanes]
    return [lane_name(h, p) for h, p in lanes], [round((b + 0.5) * width, 6) for b in range(bins)], z


def _busy_heatmap(spans: Sequence[FitSpan], wall: float) -> Figure:
    """Lanes × time bins coloured by busy fraction: the timeline when there are too many fits to draw each."""
    lanes, centres, z = busy_fractions(spans, MAX_BINS)
    return _heatmap_figure(lanes, centres, z, len(spans), wall)


def timeline_binned(busy: dict[tuple[str, int], Sequence[float]], width: float, n_fits: int) -> Figure:
    """The timeline of a search with too many fits to draw each, from busy seconds per lane and time bin already
    summed (in the database: `selectors.results.binned_busy`), bins of `width` seconds from the first start:
    the same heatmap as `timeline` draws above its limit."""
    if not busy or n_fits < 1:
        return empty_figure(NO_FITS)
    lanes = sorted(busy, key=lambda lane: (lane[0], _pid_key(lane[1])))
    bins = max(len(v) for v in busy.values())
    z = [[min(1.0, v / width) for v in busy[lane]] for lane in lanes]
    centres = [round((b + 0.5) * width, 6) for b in range(bins)]
    return _heatmap_figure([lane_name(h, p) for h, p in lanes], centres, z, n_fits, width * bins)


def _heatmap_figure(lanes: list[str], centres: list[float], z: list[list[float]], n_fits: int, wall: float) -> Figure:
    trace = {
        "type": "heatmap", "x": centres, "y": lanes, "z": z, "zmin": 0.0, "zmax": 1.0, "colorscale": "Blues",
        "colorbar": {"title": {"text": "busy fraction"}}, "xgap": 0, "ygap": 2,
        "hovertemplate": "%{y}<br>%{x:.2f} s<br>busy %{z:.0%}<extra></extra>",
    }  # fmt: skip
    layout = base_layout(
        f"timeline ({n_fits} fits, shown as busy fraction per process)", "seconds since the first fit", "",
        height=_height(len(lanes)),
    )  # fmt: skip
    layout["xaxis"] |= {"range": [0.0, wall]}
    layout["yaxis"] |= {"type": "category", "autorange": "reversed"}
    return strict_figure([trace], layout)


def timeline(spans: Sequence[FitSpan], labels: Sequence[str] | None = None, limit: int = BAR_LIMIT) -> Figure:
    """Every fit as a horizontal bar on its lane "host · pid <pid>", x in seconds since the first fit started.

    `labels` (same order as `spans`, e.g. "candidate 3, fold 1") are shown on hover with the duration. Idle gaps
    and the tail of the search show as empty space. With more than `limit` fits, a heatmap of each lane's busy
    fraction per time bin (at most `MAX_BINS` bins) is drawn instead. Spans with a non-finite start or end are
    skipped; `labels` of the wrong length raise ValueError.
    """
    kept, names = _valid(spans, labels)
    if not kept:
        return empty_figure(NO_FITS)
    t0 = min(s.start for s in kept)
    wall = max(s.end for s in kept) - t0
    return _busy_heatmap(kept, wall) if len(kept) > limit else _bars(kept, names, t0, wall)


# --- utilisation and busy time ----------------------------------------------------------------------------------


def utilisation_figure(times: Sequence[float], running: Sequence[float], cores: int) -> Figure:
    """Fits running over time (from `speedup.utilisation`) as a filled line, with `cores` as a dashed line."""
    if len(times) != len(running):
        raise ValueError(f"{len(times)} times for {len(running)} values")
    if not times:
        return empty_figure(NO_FITS)
    line = {
        "type": "scatter", "mode": "lines", "name": "fits running", "x": list(times), "y": list(running),
        "fill": "tozeroy", "hovertemplate": "%{x:.2f} s<br>%{y:.2f} fits running<extra></extra>",
    }  # fmt: skip
    finite = [t for t in times if finite_or_none(t) is not None] or [0.0]
    limit = {
        "type": "scatter", "mode": "lines", "name": f"{cores} cores", "x": [min(0.0, *finite), max(finite)],
        "y": [cores, cores], "line": {"dash": "dash", "color": "grey"}, "hoverinfo": "skip",
    }  # fmt: skip
    layout = base_layout(
        "utilisation over time", "seconds since the first fit", "fits running", hovermode="x unified",
        legend={"orientation": "h", "y": -0.25},
    )  # fmt: skip
    layout["yaxis"] |= {"rangemode": "tozero"}
    return strict_figure([line, limit], layout)


def process_busy_figure(accounting: dict[str, Any]) -> Figure:
    """Busy seconds per process (from `speedup.account`), with the search's wall time as a dashed line.

    A process whose bar reaches the line was busy for the whole search."""
    machines: dict[str, Any] = accounting.get("machines") or {}
    processes = [
        (host, pid, p)
        for host in sorted(machines)
        for pid, p in sorted((machines[host].get("processes") or {}).items(), key=lambda item: _pid_key(item[0]))
    ]
    if not processes:
        return empty_figure(NO_FITS)
    wall = accounting.get("wall")
    bars = {
        "type": "bar", "name": "busy", "x": [lane_name(host, pid) for host, pid, _ in processes],
        "y": [p.get("busy") for _, _, p in processes],
        "customdata": [[p.get("fits"), p.get("span")] for _, _, p in processes],
        "hovertemplate": "%{x}<br>busy %{y:.2f} s<br>%{customdata[0]} fits over %{customdata[1]:.2f} s"
        "<extra></extra>",
    }  # fmt: skip
    layout = base_layout("busy time per process (wall time dashed)", "process", "busy seconds", showlegend=False)
    layout["xaxis"] |= {"type": "category"}
    if finite_or_none(wall) is not None:
        layout["shapes"] = [{
            "type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": wall, "y1": wall,
            "line": {"dash": "dash", "color": "grey"},
        }]  # fmt: skip
        layout["annotations"] = [{
            "text": f"wall time {wall:.2f} s", "xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": wall,
            "yanchor": "bottom", "showarrow": False,
        }]  # fmt: skip
        top = max([wall, *(y for y in bars["y"] if finite_or_none(y) is not None)])
        layout["yaxis"] |= {"range": [0.0, top * 1.15 if top > 0 else 1.0]}
    return strict_figure([bars], layout)


# --- scaling ----------------------------------------------------------------------------------------------------


def _samples(lo: float, hi: float, count: int = CURVE_POINTS) -> list[float]:
    """`count` evenly spaced values from `lo` to `hi` (both included)."""
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def _amdahl_traces(s: float, cores: int, xmax: float, unit: str = "processes") -> list[dict[str, Any]]:
    """The Amdahl curve for serial fraction `s` from 1 to `xmax`, and its projections at 2×, 4×, 8× `cores`."""
    xs = _samples(1.0, xmax)
    curve = {
        "type": "scatter", "mode": "lines", "name": f"Amdahl fit, serial fraction {s:.3f}", "x": xs,
        "y": [amdahl(x, s) for x in xs],
        "hovertemplate": f"%{{x:.0f}} {unit}<br>Amdahl %{{y:.2f}}×<extra></extra>",
    }  # fmt: skip
    if cores < 1:
        return [curve]
    projected = sorted(projections(s, cores).items())
    points = {
        "type": "scatter", "mode": "markers+text", "name": "projected", "x": [n for n, _ in projected],
        "y": [y for _, y in projected], "text": [f"{y:.1f}× at {n} {unit}" for n, y in projected],
        "textposition": "bottom right", "marker": {"symbol": "diamond", "size": 10},
        "hovertemplate": "%{text}<extra></extra>",
    }  # fmt: skip
    return [curve, points]


def scaling_figure(
    points: Sequence[tuple[int, float]], serial_fraction: float | None, cores: int, unit: str = "processes"
) -> Figure:
    """Measured speedup per number of processes (or machines: `unit`, the x axis title) against the ideal y = n
    and, when `serial_fraction` is given, the fitted Amdahl curve (from 1 to 8 × max(processes, cores)) with
    projections at 2×, 4× and 8× `cores`.

    Points with fewer than 1 process or a non-finite speedup are skipped. The y axis is cut just above the
    measured and Amdahl values, so the ideal line runs off the top rather than flattening everything else."""
    measured = sorted(
        (n, float(y)) for n, y in points if finite_or_none(n) is not None and n >= 1 and finite_or_none(y) is not None
    )
    if not measured:
        return empty_figure("No scaling runs yet.")
    s = serial_fraction if finite_or_none(serial_fraction) is not None else None
    reach = max(measured[-1][0], cores, 1)
    xmax = 8 * reach if s is not None else reach
    data: list[dict[str, Any]] = [
        {
            "type": "scatter", "mode": "lines+markers", "name": "measured", "x": [n for n, _ in measured],
            "y": [y for _, y in measured], "hovertemplate": f"%{{x}} {unit}<br>speedup %{{y:.2f}}×<extra></extra>",
        },
        {
            "type": "scatter", "mode": "lines", "name": "ideal (linear)", "x": [1, xmax], "y": [1, xmax],
            "line": {"dash": "dash", "color": "grey"}, "hoverinfo": "skip",
        },
    ]  # fmt: skip
    if s is not None:
        data += _amdahl_traces(s, cores, xmax, unit)
    top = max(reach, *(y for _, y in measured), *(max(t["y"]) for t in data[2:]))
    layout = base_layout(
        "measured speedup vs ideal", unit, "speedup", legend={"orientation": "h", "y": -0.25},
    )  # fmt: skip
    layout["xaxis"] |= {"range": [0.0, xmax * 1.05]}
    layout["yaxis"] |= {"range": [0.0, top * 1.1]}
    return strict_figure(data, layout)

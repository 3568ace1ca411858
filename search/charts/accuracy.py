"""Accuracy figures: candidates' scores against their parameters, as plain dicts for Plotly.js.

Pure functions over `CandidateRow`s: no Django, no database, no plotly objects. Scores follow scikit-learn
conventions (higher is better). A score that is None or not finite (NaN, inf) counts as a failed candidate, and
every returned figure is passed through `strict_figure`, so `json.dumps(fig, allow_nan=False)` always works.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from search.charts._utils import Figure, base_layout, empty_figure, finite_or_none, is_number, strict_figure

LOG_RATIO = 100  # a positive numeric parameter spanning at least this factor is shown on a log scale
UNSET = "(unset)"  # parallel-coordinates label for candidates that lack a parameter
HEATMAP_CELLS = 50  # cells per heatmap axis at most: more distinct values are binned
OTHER = "(other)"  # heatmap cell of the less tried values of a parameter with too many


@dataclass(frozen=True)
class CandidateRow:
    index: int  # candidate index in the search
    params: dict[str, Any]  # JSON values: int, float, str, bool, None, or lists
    mean: float | None  # mean test score of the chosen metric (None = every fit failed)
    std: float | None
    rank: int | None  # 1 = best
    mean_train: float | None = None  # only when train scores were computed
    std_train: float | None = None


# --- parameter values -------------------------------------------------------------------------------------------


def _key(v: Any) -> Hashable:
    """A hashable identity for a parameter value (True and 1 stay distinct, 1 and 1.0 do not)."""
    if isinstance(v, bool):
        return ("bool", v)
    if is_number(v):
        return ("nan",) if math.isnan(v) else ("num", v)
    if v is None or isinstance(v, str):
        return ("str", v)
    return ("json", json.dumps(v, sort_keys=True, default=str))


def value_label(v: Any) -> str:
    """Display label of a parameter value: "None", "True", "0.1", "100", "rbf", '["a", 1]'."""
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return json.dumps(v, default=str)


def _sort_key(v: Any) -> tuple[int, bool, float, str]:
    if is_number(v):
        return (0, math.isnan(v), 0.0 if math.isnan(v) else v, "")
    return (1, False, 0.0, value_label(v))


def param_values(rows: Iterable[CandidateRow], name: str) -> list[Any]:
    """Distinct values of `name` (rows lacking it are skipped): numbers numerically, then the rest by label."""
    seen: dict[Hashable, Any] = {}
    for row in rows:
        if name in row.params:
            seen.setdefault(_key(row.params[name]), row.params[name])
    return sorted(seen.values(), key=_sort_key)


def is_numeric(values: Sequence[Any]) -> bool:
    """At least two values, all finite int/float (bools are not numbers here)."""
    return len(values) >= 2 and all(finite_or_none(v) is not None for v in values)


def _log_scale(values: Sequence[Any]) -> bool:
    """Numeric, all positive and spanning at least `LOG_RATIO`×: better read on a log axis."""
    return is_numeric(values) and min(values) > 0 and max(values) / min(values) >= LOG_RATIO


def varied_params(rows: Sequence[CandidateRow]) -> list[str]:
    """Parameter names that take more than one distinct value across rows, sorted."""
    names = {name for row in rows for name in row.params}
    return sorted(name for name in names if len(param_values(rows, name)) > 1)


# --- helpers ----------------------------------------------------------------------------------------------------


def _groups(rows: Iterable[CandidateRow], *names: str) -> dict[tuple[Hashable, ...], list[CandidateRow]]:
    """Rows grouped by their values of `names` (rows lacking any of them are skipped)."""
    out: dict[tuple[Hashable, ...], list[CandidateRow]] = defaultdict(list)
    for row in rows:
        if all(n in row.params for n in names):
            out[tuple(_key(row.params[n]) for n in names)].append(row)
    return out


def _best(rows: Iterable[CandidateRow]) -> CandidateRow | None:
    """The row with the highest finite mean score, or None when every row failed."""
    scored = [r for r in rows if finite_or_none(r.mean) is not None]
    return max(scored, key=lambda r: finite_or_none(r.mean) or 0.0) if scored else None


def params_label(params: dict[str, Any]) -> str:
    """Parameters as "k=v, k=v" (keys sorted)."""
    return ", ".join(f"{k}={value_label(params[k])}" for k in sorted(params))


# --- figures ----------------------------------------------------------------------------------------------------


def _param_axis(param: str, values: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """x coordinates and x axis for `values`: numeric (log when `_log_scale`) or categorical value labels."""
    if is_numeric(values):
        return list(values), {"title": {"text": param}, "type": "log" if _log_scale(values) else "linear"}
    return [value_label(v) for v in values], {"title": {"text": param}, "type": "category"}


def score_vs_param(rows: Sequence[CandidateRow], param: str, metric: str) -> Figure:
    """Per value of `param`: the best candidate's mean score (± its std) and the mean over all its candidates.

    Failed candidates (mean None/NaN) are ignored; a value where every candidate failed gets None.
    """
    values = param_values(rows, param)
    groups = _groups(rows, param)
    best_y: list[float | None] = []
    best_err: list[float | None] = []
    avg_y: list[float | None] = []
    for v in values:
        group = groups[(_key(v),)]
        best = _best(group)
        best_y.append(finite_or_none(best.mean) if best else None)
        best_err.append(finite_or_none(best.std) if best else None)
        scores = [s for s in (finite_or_none(r.mean) for r in group) if s is not None]
        avg_y.append(sum(scores) / len(scores) if scores else None)
    x, xaxis = _param_axis(param, values)
    best_trace = {
        "type": "scatter", "mode": "lines+markers", "name": "best candidate", "x": x, "y": best_y,
        "error_y": {"type": "data", "array": best_err, "visible": True},
    }  # fmt: skip
    avg_trace = {
        "type": "scatter", "mode": "lines+markers", "name": "average over the other parameters", "x": x, "y": avg_y,
        "line": {"dash": "dash"},
    }  # fmt: skip
    layout = base_layout(
        f"{metric} vs {param}", xaxis=xaxis, yaxis={"title": {"text": metric}}, hovermode="x unified",
        legend={"orientation": "h", "y": -0.25},
    )  # fmt: skip
    return strict_figure([best_trace, avg_trace], layout)


def _number_label(v: float, digits: int) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.{digits}g}"


def _range_labels(bounds: Sequence[tuple[float, float]]) -> list[str]:
    """ "lo–hi" per bin (one value: its label), with as many significant digits as it takes to tell every bin
    apart (Plotly merges equal categories)."""
    for digits in range(3, 18):
        labels = [
            _number_label(lo, digits) if lo == hi else f"{_number_label(lo, digits)}–{_number_label(hi, digits)}"
            for lo, hi in bounds
        ]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} #{i}" for i, label in enumerate(labels)]


def _heatmap_axis(rows: Sequence[CandidateRow], name: str) -> tuple[list[str], dict[Hashable, int], int]:
    """An axis of at most `HEATMAP_CELLS` cells: (labels, cell index per value key, the cell of any other value).

    Up to `HEATMAP_CELLS` distinct values: one cell each, as they are. More: the numbers are cut into bins of
    about as many distinct values each (quantiles of the values tried, so a log-uniform draw gets log-spaced
    bins), the few other values (None, text) keep a cell each; mostly non-numeric values keep the most tried
    `HEATMAP_CELLS - 1` and put the rest in one "(other)" cell."""
    values = param_values(rows, name)
    if len(values) <= HEATMAP_CELLS:
        return [value_label(v) for v in values], {_key(v): i for i, v in enumerate(values)}, -1
    numbers = [v for v in values if finite_or_none(v) is not None]  # sorted: param_values puts numbers first
    others = [v for v in values if finite_or_none(v) is None]
    if numbers and len(others) <= HEATMAP_CELLS // 2:
        n_bins = HEATMAP_CELLS - len(others)
        bins = [numbers[i * len(numbers) // n_bins : (i + 1) * len(numbers) // n_bins] for i in range(n_bins)]
        index = {_key(v): i for i, chunk in enumerate(bins) for v in chunk}
        index |= {_key(v): n_bins + j for j, v in enumerate(others)}
        labels = _range_labels([(chunk[0], chunk[-1]) for chunk in bins]) + [value_label(v) for v in others]
        return labels, index, -1
    tried = Counter(_key(row.params[name]) for row in rows if name in row.params)
    kept = sorted(values, key=lambda v: -tried[_key(v)])[: HEATMAP_CELLS - 1]  # stable: ties in value order
    kept_keys = {_key(v) for v in kept}
    shown = [v for v in values if _key(v) in kept_keys]
    return [*(value_label(v) for v in shown), OTHER], {_key(v): i for i, v in enumerate(shown)}, len(shown)


def heatmap(rows: Sequence[CandidateRow], x_param: str, y_param: str, metric: str) -> Figure:
    """Best mean score per (x value, y value) pair: z[y][x], None where no candidate or all failed.

    A parameter with more than `HEATMAP_CELLS` distinct values (a random search's continuous draws) is binned
    (see `_heatmap_axis`), each cell the best of its candidates: at most `HEATMAP_CELLS`² cells, built in one
    pass over the rows."""
    xs, x_index, x_other = _heatmap_axis(rows, x_param)
    ys, y_index, y_other = _heatmap_axis(rows, y_param)
    best: dict[tuple[int, int], float] = {}
    for row in rows:
        score = finite_or_none(row.mean)
        if score is None or x_param not in row.params or y_param not in row.params:
            continue
        cell = (y_index.get(_key(row.params[y_param]), y_other), x_index.get(_key(row.params[x_param]), x_other))
        if cell not in best or score > best[cell]:
            best[cell] = score
    z = [[best.get((j, i)) for i in range(len(xs))] for j in range(len(ys))]
    trace = {
        "type": "heatmap", "x": xs, "y": ys, "z": z,
        "colorscale": "Viridis", "colorbar": {"title": {"text": metric}}, "hoverongaps": False,
        "texttemplate": "%{z:.4f}",
        "hovertemplate": f"{x_param}=%{{x}}<br>{y_param}=%{{y}}<br>{metric}=%{{z:.4f}}<extra></extra>",
    }  # fmt: skip
    layout = base_layout(
        f"best {metric} by {x_param} × {y_param}",
        xaxis={"title": {"text": x_param}, "type": "category"}, yaxis={"title": {"text": y_param}, "type": "category"},
    )  # fmt: skip
    return strict_figure([trace], layout)


def _rank_key(row: CandidateRow) -> tuple[bool, int, float]:
    """Best first: by rank (missing ranks last), then by higher mean score."""
    return (row.rank is None, row.rank or 0, -(finite_or_none(row.mean) or 0.0))


def _dimension(rows: Sequence[CandidateRow], param: str) -> dict[str, Any]:
    """A parcoords dimension: numeric values (log10 when wide), or integer codes labelled with the value labels."""
    values = param_values(rows, param)
    complete = all(param in r.params for r in rows)
    if complete and is_numeric(values):
        if _log_scale(values):
            return {"label": f"log10 {param}", "values": [math.log10(r.params[param]) for r in rows]}
        return {"label": param, "values": [r.params[param] for r in rows]}
    codes = {_key(v): i for i, v in enumerate(values)}
    labels = [value_label(v) for v in values] + ([] if complete else [UNSET])
    encoded = [codes[_key(r.params[param])] if param in r.params else len(values) for r in rows]
    return {
        "label": param, "values": encoded, "tickvals": list(range(len(labels))), "ticktext": labels,
        "range": [0, max(len(labels) - 1, 1)],
    }  # fmt: skip


def parallel_coordinates(
    rows: Sequence[CandidateRow], params: Sequence[str], metric: str, limit: int = 10000
) -> Figure:
    """One line per successful candidate across `params` and the score; at most the `limit` best by rank.

    Numeric parameters are plotted as values (log10 when positive and spanning >= 100×); others, or parameters
    some candidates lack, as integer codes with the value labels as ticks ("(unset)" for a missing parameter).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    kept = [r for r in rows if finite_or_none(r.mean) is not None]
    if not kept:
        return empty_figure("no successful candidates yet")
    title = f"all candidates: {metric}"
    if len(kept) > limit:  # more lines than a browser draws usefully: the best ones, and the title says so
        title = f"the best {limit:,} of {len(kept):,} candidates (by rank): {metric}"
        kept = sorted(sorted(kept, key=_rank_key)[:limit], key=lambda r: r.index)
    scores = [finite_or_none(r.mean) for r in kept]
    dimensions = [_dimension(kept, p) for p in params] + [{"label": metric, "values": scores}]
    line = {"color": scores, "colorscale": "Viridis", "showscale": True, "colorbar": {"title": {"text": metric}}}
    trace = {"type": "parcoords", "dimensions": dimensions, "line": line}
    layout = base_layout(title, margin={"l": 80, "r": 80, "t": 80, "b": 40}, height=420)
    return strict_figure([trace], layout)


def train_vs_test(rows: Sequence[CandidateRow], metric: str) -> Figure | None:
    """Mean train vs mean test score per candidate with a y = x reference; None without train scores."""
    if not any(finite_or_none(r.mean_train) is not None for r in rows):
        return None
    points = [r for r in rows if finite_or_none(r.mean_train) is not None and finite_or_none(r.mean) is not None]
    if not points:
        return empty_figure("no candidate has both train and test scores")
    xs = [finite_or_none(r.mean_train) or 0.0 for r in points]
    ys = [finite_or_none(r.mean) or 0.0 for r in points]
    lo, hi = min(*xs, *ys), max(*xs, *ys)
    scatter = {
        "type": "scatter", "mode": "markers", "name": "candidates", "x": xs, "y": ys,
        "text": [params_label(r.params) for r in points], "customdata": [r.index for r in points],
        "hovertemplate": "train %{x:.4f}<br>test %{y:.4f}<br>%{text}<extra>#%{customdata}</extra>",
    }  # fmt: skip
    diagonal = {
        "type": "scatter", "mode": "lines", "name": "train = test", "x": [lo, hi], "y": [lo, hi],
        "line": {"dash": "dot", "color": "grey"}, "hoverinfo": "skip",
    }  # fmt: skip
    layout = base_layout(
        f"train vs test {metric} (points below the line overfit)",
        xaxis={"title": {"text": f"mean train {metric}"}}, yaxis={"title": {"text": f"mean test {metric}"}},
    )  # fmt: skip
    return strict_figure([scatter, diagonal], layout)


def halving_rounds(rounds: Sequence[Any], metric: str, resource: str) -> Figure:
    """Mean test score of every candidate in every successive-halving round, against the round's budget;
    a candidate's line goes as far as it was kept (its budget parameter left out of its identity)."""
    lines: dict[str, dict[str, list[Any]]] = {}
    for rnd in rounds:
        for index, params, score in rnd.scores:
            key = params_label({k: v for k, v in params.items() if k != resource})
            line = lines.setdefault(key, {"x": [], "y": [], "customdata": []})
            line["x"].append(rnd.n_resources)
            line["y"].append(finite_or_none(score))
            line["customdata"].append(index)
    if not lines:
        return empty_figure("No round has been scored yet.")
    traces = [
        {
            "type": "scatter", "mode": "lines+markers", "name": key, "x": line["x"], "y": line["y"],
            "customdata": line["customdata"], "showlegend": False,
            "hovertemplate": f"{key}<br>{resource} %{{x}}<br>{metric} %{{y:.4f}}<extra>#%{{customdata}}</extra>",
        }
        for key, line in lines.items()
    ]  # fmt: skip
    layout = base_layout(
        f"successive halving: mean test {metric} per round",
        xaxis={"title": {"text": resource}, "type": "log"}, yaxis={"title": {"text": f"mean test {metric}"}},
    )  # fmt: skip
    return strict_figure(traces, layout)

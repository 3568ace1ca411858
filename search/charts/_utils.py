"""What every chart builder shares: the figure type, the common layout, finite numbers and strict JSON.

Every figure leaves its builder through `strict_figure`, so `json.dumps(fig, allow_nan=False)` always works
(NaN/inf become None). `empty_figure` is the figure drawn when there is nothing to plot, with a message.
"""

from __future__ import annotations

import math
from typing import Any

Figure = dict[str, Any]

HEIGHT = 360
MARGIN = {"l": 60, "r": 20, "t": 50, "b": 50}


def is_number(v: Any) -> bool:
    """An int or float (bools are not numbers here)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def finite_or_none(x: Any) -> float | None:
    """`x` as a float, or None when it is missing or not a finite number."""
    if not is_number(x) or not math.isfinite(x):
        return None
    return float(x)


def json_safe(obj: Any) -> Any:
    """A copy of `obj` with NaN/inf floats replaced by None (and tuples by lists)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def strict_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    """The figure dict, made strict-JSON safe."""
    return {"data": json_safe(data), "layout": json_safe(layout)}


def base_layout(title: str, x_title: str | None = None, y_title: str | None = None, **extra: Any) -> dict[str, Any]:
    """Title, margin and height, the axis titles that are given (None: no such axis key), then `extra`
    (which may replace any of them, keeping its place)."""
    layout: dict[str, Any] = {"title": {"text": title}, "margin": dict(MARGIN), "height": HEIGHT}
    if x_title is not None:
        layout["xaxis"] = {"title": {"text": x_title}}
    if y_title is not None:
        layout["yaxis"] = {"title": {"text": y_title}}
    return layout | extra


def empty_figure(message: str) -> Figure:
    """A figure with no data, hidden axes and `message` centred (when there is nothing to plot yet)."""
    note = {"text": message, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False}
    layout = base_layout(
        "", xaxis={"visible": False}, yaxis={"visible": False}, annotations=[note | {"font": {"size": 16}}]
    )
    return {"data": [], "layout": layout}

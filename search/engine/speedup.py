"""Parallel accounting and scaling: pure functions over fit timings (no Django).

- `account`: wall time, busy time, speedup = busy / wall, efficiency = speedup / processes, per machine
  and per process.
- `utilisation`: how many fits ran at once over time, in at most `bins` steps.
- `fit_serial_fraction` / `amdahl`: Amdahl's law S(n) = 1 / (s + (1 - s) / n) fitted to measured runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitSpan:
    host: str
    pid: int
    start: float  # unix seconds
    end: float
    busy: float  # fit_time + score_time (a fit built in several threads: its fit_time times its threads)
    cores: int = 1  # threads the fit held (engine.schedule): a process fitting with 4 threads uses 4 cores


def account(spans: Sequence[FitSpan]) -> dict[str, Any]:
    """Totals and per-machine / per-process busy time. Empty input gives zeros."""
    if not spans:
        return {"wall": 0.0, "busy": 0.0, "speedup": None, "efficiency": None, "processes": 0, "machines": {}}
    start, end = min(s.start for s in spans), max(s.end for s in spans)
    wall = end - start
    busy = sum(s.busy for s in spans)
    processes: dict[tuple[str, int], dict[str, Any]] = {}
    for s in spans:
        p = processes.setdefault((s.host, s.pid), {"busy": 0.0, "fits": 0, "first": s.start, "last": s.end})
        p["busy"] += s.busy
        p["fits"] += 1
        p["first"], p["last"] = min(p["first"], s.start), max(p["last"], s.end)
    machines: dict[str, dict[str, Any]] = {}
    for (host, pid), p in sorted(processes.items()):
        m = machines.setdefault(host, {"busy": 0.0, "fits": 0, "processes": {}})
        m["busy"] += p["busy"]
        m["fits"] += p["fits"]
        m["processes"][str(pid)] = {"busy": p["busy"], "fits": p["fits"], "span": p["last"] - p["first"]}
    for host, m in machines.items():
        m["cores"] = peak_concurrency([s for s in spans if s.host == host])
    speedup = busy / wall if wall > 0 else None
    n = sum(m["cores"] for m in machines.values())  # cores really used: a retried unit's new pids don't count twice
    return {
        "wall": wall, "busy": busy, "speedup": speedup, "processes": n, "machines": machines,
        "efficiency": speedup / n if speedup is not None and n else None, "start": start, "end": end,
    }  # fmt: skip


def peak_concurrency(spans: Sequence[FitSpan]) -> int:
    """The most cores busy at the same moment (fits, each counted with its threads): the cores a machine used."""
    events = sorted(
        [(s.start, s.cores) for s in spans] + [(s.end, -s.cores) for s in spans], key=lambda e: (e[0], e[1])
    )
    running = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


def utilisation(spans: Sequence[FitSpan], bins: int = 200) -> tuple[list[float], list[float]]:
    """(seconds from the first start, mean number of fits running) per time bin."""
    if not spans:
        return [], []
    start, end = min(s.start for s in spans), max(s.end for s in spans)
    width = max(end - start, 1e-9) / bins
    busy = [0.0] * bins
    for s in spans:  # add each fit's overlap with every bin it touches
        first, last = int((s.start - start) / width), min(int((s.end - start) / width), bins - 1)
        for b in range(first, last + 1):
            lo, hi = start + b * width, start + (b + 1) * width
            busy[b] += max(0.0, min(hi, s.end) - max(lo, s.start))
    return [round((b + 0.5) * width, 6) for b in range(bins)], [v / width for v in busy]


def amdahl(n: float, serial_fraction: float) -> float:
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / n)


def fit_serial_fraction(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares serial fraction s from (processes, measured speedup) points.

    Amdahl is linear in s after inverting: 1/S - 1/n = s (1 - 1/n). Points at n = 1 carry no
    information. The result is clamped to [0, 1]; None when no point has n > 1."""
    xs = [(1 - 1 / n, 1 / speedup - 1 / n) for n, speedup in points if n > 1 and speedup > 0]
    denominator = sum(x * x for x, _ in xs)
    if not denominator:
        return None
    return min(1.0, max(0.0, sum(x * y for x, y in xs) / denominator))


def projections(serial_fraction: float, cores: int, factors: Sequence[int] = (2, 4, 8)) -> dict[int, float]:
    """Projected speedup at `factor` × `cores` processes."""
    return {f * cores: amdahl(f * cores, serial_fraction) for f in factors}


def lpt_order(costs: Sequence[float]) -> list[int]:
    """Indices by decreasing estimated cost: longest processing time first keeps the tail short."""
    return sorted(range(len(costs)), key=lambda i: (-costs[i], i))

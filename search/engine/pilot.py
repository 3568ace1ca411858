"""A pilot: time a few real fits of a search that has no past fits to go by, then extrapolate to the whole grid.

Pure apart from reading a runner's output: no Django. The service layer (search.services.estimates) starts the
isolated runner (`python -m search.engine.runner`) with `pilot_cells` as its job, and this module reads
its JSON lines under a hard time budget, kills its process group when the budget is spent, and turns
what came back into seconds per unit of relative cost (engine.cost), the same yardstick the estimate
from past fits uses.

The service runs it on the cluster (a django-q2 task, never in the web process), and `watch` also stops it
when its search is cancelled. The runner runs the pilot's cells one after another, most expensive first
(`run_job` orders by cost). A fit that finished gives its fit + score time. When none finished in time,
the one cut off has run since the runner's `start` event (sent just before the data is loaded), so the
estimate becomes a lower bound: "at least X s per fit".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import halving
from .cost import relative_cost
from .reuse import plan_chains

log = logging.getLogger(__name__)
STARTUP_SECONDS = 30.0  # a cold runner imports scikit-learn first: ~1.5 s on an idle machine, more when busy


@dataclass(frozen=True)
class PilotFit:
    cost: float
    seconds: float  # fit + score time; for an unfinished fit, how long it ran at least
    finished: bool


@dataclass(frozen=True)
class PilotResult:
    fits: list[PilotFit] = field(default_factory=list)
    killed: bool = False  # the budget ran out and the runner's group was killed
    error: str = ""
    runner_pid: int | None = None
    seconds: float = 0.0  # wall time of the whole pilot, interpreter start included
    stopped: bool = False  # `stop` said so (its search was cancelled): the runner's group was killed

    @property
    def per_cost(self) -> float | None:
        """Seconds per unit of relative cost: from finished fits, else a lower bound from the one cut off."""
        done = [f for f in self.fits if f.finished]
        if done:
            return sum(f.seconds for f in done) / sum(f.cost for f in done)
        cut = [f.seconds / f.cost for f in self.fits if f.seconds > 0]
        return max(cut) if cut else None

    @property
    def lower_bound(self) -> bool:
        return not any(f.finished for f in self.fits)

    def seconds_per_fit(self) -> float | None:
        """The mean (or, for a lower bound, the least) seconds of the fits seen."""
        seen = [f for f in self.fits if f.finished] or [f for f in self.fits if f.seconds > 0]
        return sum(f.seconds for f in seen) / len(seen) if seen else None


def pilot_cells(candidates: Sequence[dict[str, Any]], count: int = 2) -> list[tuple[int, int, dict[str, Any]]]:
    """(candidate index, fold 0, params) of the most expensive and the cheapest candidates (then the next
    most expensive, up to `count`): the grid's range of costs in as few fits as possible."""
    by_cost = sorted(range(len(candidates)), key=lambda i: (relative_cost(candidates[i]), i))
    picked: list[int] = []
    for i in [*by_cost[-1:], *by_cost[:1], *reversed(by_cost[1:-1])]:
        if i not in picked and len(picked) < count:
            picked.append(i)
    return [(i, 0, dict(candidates[i])) for i in picked]


def extrapolate(
    *,
    per_cost: float,
    candidates: Sequence[dict[str, Any]],
    n_splits: int,
    processes: int,
    efficiency: float,
    cost: float | None = None,
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of every fit of the grid: seconds per unit of cost × the grid's total
    cost (or `cost`, per fold, from `search_cost`), spread over `processes` at the given parallel efficiency."""
    total = cost if cost is not None else sum(relative_cost(c) for c in candidates)
    cpu = per_cost * n_splits * total
    return cpu, cpu / max(1, processes) / max(efficiency, 1e-6)


@dataclass(frozen=True)
class SearchCost:
    """What a whole search will compute: `fits` (every fold, every halving round) and `cost`, its relative
    cost per fold in units of engine.cost on the full data set."""

    fits: int
    cost: float
    path_reused: int = 0  # fits scored from a grown model (path reuse) instead of fitted


def search_cost(
    *,
    steps: Sequence[Sequence[str]],
    params: dict[str, Any],
    candidates: Sequence[dict[str, Any]],
    n_splits: int,
    n_samples: int,
    path_reuse: bool,
    hs: halving.HalvingSpec | None = None,
    schedule: halving.Schedule | None = None,
    budget_default: Any = None,
) -> SearchCost:
    """The search's size and cost. Grid and random: a path-reuse chain (engine.reuse) costs its largest fit.
    Halving (`schedule` given): round i runs `n_candidates[i]` candidates with that round's budget (or on
    `n_resources[i]` of the rows); who survives is unknown, so each round costs its candidates' average.
    Costs are relative to the candidates' own parameters, as the pilot and the history measure them: a budget
    round is scaled against `budget_default`, the value the estimator otherwise has (e.g. 100 trees)."""
    if hs is None or schedule is None:
        per_fold = max(1, n_samples * (n_splits - 1) // max(n_splits, 1))
        cells = [(i, 0, c) for i, c in enumerate(candidates)]
        chains = plan_chains(steps, params, cells, [per_fold]) if path_reuse else []
        if not chains:
            return SearchCost(len(candidates) * n_splits, sum(relative_cost(c) for c in candidates))
        path_reused = sum(len(chain.cells) - 1 for chain in chains)
        cost = sum(relative_cost(chain.cells[-1][1]) for chain in chains)
        return SearchCost(len(candidates) * n_splits, cost, path_reused * n_splits)
    mean = sum(relative_cost(c) for c in candidates) / max(len(candidates), 1)
    fits, cost = 0, 0.0
    for n_cand, n_res in zip(schedule.n_candidates, schedule.n_resources, strict=True):
        scale = 1.0  # the round's share of the rows, or its budget against the usual one
        if hs.resource == "n_samples":
            scale = n_res / max(n_samples, 1)
        elif budget_default is not None:
            scale = relative_cost({hs.resource: n_res}) / relative_cost({hs.resource: budget_default})
        fits += n_cand * n_splits
        cost += n_cand * scale * mean
    return SearchCost(fits, cost)


def pump_events(stream: Any, events: queue.Queue[dict[str, Any] | None]) -> None:
    """Put each JSON line a runner writes on `events` (a line that is not JSON is logged and skipped), then
    None at its end. Runs in a daemon thread per runner (here and in search.services.runners)."""
    for line in stream:
        try:
            events.put(json.loads(line))
        except json.JSONDecodeError:
            log.warning("runner wrote a non-protocol line: %r", line[:200])
    events.put(None)


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the runner leads its own process group
    proc.wait()


def watch(
    proc: subprocess.Popen[str],
    costs: dict[int, float],
    budget: float,
    startup: float = STARTUP_SECONDS,
    stop: Callable[[], bool] | None = None,
    poll: float = 0.5,
) -> PilotResult:
    """Read a runner's events until it ends or `budget` seconds have passed since its `start` event (the
    interpreter is up; it may take `startup` seconds to get there), or until `stop()` (asked every `poll`
    seconds) says so, then make sure its whole process group is gone. `costs` maps candidate index →
    relative cost."""
    assert proc.stdout is not None
    began = time.monotonic()
    deadline = began + startup
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=pump_events, args=(proc.stdout, events), daemon=True).start()
    fits: list[PilotFit] = []
    done: set[int] = set()
    last: float | None = None
    error, over, stopped = "", False, False
    next_check = began
    while not over:
        now = time.monotonic()
        if stop is not None and now >= next_check:
            next_check = now + poll
            if stop():
                stopped = True
                break
        if now >= deadline:
            break  # out of time
        try:
            event = events.get(timeout=min(deadline - now, poll) if stop is not None else deadline - now)
        except queue.Empty:
            continue
        kind = "eof" if event is None else event.get("event")
        if event and kind == "start":
            last = time.monotonic()
            deadline = last + budget
        elif event and kind in ("fit", "fits"):
            for fit in event["fits"] if kind == "fits" else [event]:  # `fits`: one dispatched task's results
                done.add(int(fit["candidate"]))
                if not fit.get("error"):  # a failed fit's time says nothing about a good one's
                    seconds = float(fit["fit_time"]) + float(fit["score_time"])
                    fits.append(PilotFit(costs.get(int(fit["candidate"]), 1.0), seconds, True))
            last = time.monotonic()
        elif kind in ("end", "error", "eof"):
            error = event.get("message", "") if event and kind == "error" else ""
            over = True
    killed = not over
    pending = [i for i in costs if i not in done]
    if killed and not stopped and pending and last is not None:
        # A fit was running when the budget ran out. Fits run back to back, so it started at the last
        # event: it takes at least that long (for the first fit this includes loading the data, which is
        # small beside a fit that overruns the budget). Dividing by the largest cost still pending keeps
        # seconds-per-cost a lower bound whichever fit it was.
        fits.append(PilotFit(max(costs[i] for i in pending), time.monotonic() - last, False))
    _kill(proc)
    return PilotResult(fits, killed, error, proc.pid, time.monotonic() - began, stopped)

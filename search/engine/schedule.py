"""How a unit's fits become tasks on the cores of the machine that runs it (pure, no Django).

Path reuse (engine.reuse) turns the fits of one (other parameters, fold) into one chain grown through
`n_estimators`: less work, but fewer and longer tasks. On 2 cores the reference grid's 30 chains keep both
busy; on 64 cores 30 chains leave 34 idle and the longest chain is the whole wall time. So each unit
chooses, by the wall time it estimates for the real core count, between:

- **chains** as planned (the least work);
- **independent fits**: one task per fit, path reuse off (more work, more tasks). By the estimate they never
  end sooner: a chain costs what its largest fit costs alone, and that fit is one of the tasks. The option is
  weighed all the same, so a cost model that says otherwise is obeyed. (Cutting a chain in two is no better:
  its second part, fitted from scratch, costs the whole chain.)
- **threads per fit**: a forest builds its trees in `threads` threads (`n_jobs` of the fit only), with
  `cores // threads` fits at once. Each tree's seed is drawn before any tree is built, so the trees are those
  of a one-thread fit; the scores are then computed with `n_jobs=1`, in scikit-learn's order, so they are
  bit-identical too (tests/engine/test_schedule.py checks against GridSearchCV).

The estimate is list scheduling, longest processing time first (what `run_job` dispatches), over
`cores // threads` slots: `simulate`. A forest's fit costs its trees, and `threads` threads build
`ceil(trees / threads)` rounds of trees (whole trees: a thread never shares one). The plan with the shortest
estimated wall wins; ties go to less work, then fewer threads. Costs are relative (engine.cost) in a run and
measured seconds in the simulation test; only their ratios matter.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .reuse import PATH_REUSE, Chain

# Forests whose fit builds members in threads with seeds drawn first (scikit-learn 1.9 `ensemble/_forest.py`:
# `_make_estimator(random_state=random_state)` for every new tree before `Parallel(prefer="threads")`).
THREADED_FITS = frozenset(
    {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"}
)
MEMBERS = "n_estimators"

Cost = Callable[[Mapping[str, Any], int], float]  # (candidate parameters, fold) -> cost of its independent fit


def threaded_fit(steps: Sequence[Sequence[str]]) -> bool:
    """Whether this estimator's fit may use several threads with the same model (a single forest step)."""
    return len(steps) == 1 and steps[0][0] in THREADED_FITS


def _members(params: Mapping[str, Any]) -> int:
    value = params.get(MEMBERS, 100)  # scikit-learn's default forest size
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def task_work(chain: Chain, cost: Cost) -> float:
    """Single-core cost of a task: a grown chain costs its largest fit (every smaller model is on the way)."""
    f = chain.fold
    return cost(chain.cells[-1][1], f) if chain.param else sum(cost(params, f) for _, params in chain.cells)


def task_duration(chain: Chain, cost: Cost, threads: int) -> float:
    """Estimated wall time of a task whose fits build `threads` trees at once (1: the single-core cost)."""
    if threads <= 1:
        return task_work(chain, cost)
    last = chain.cells[-1][1]
    per_member = cost(last, chain.fold) / _members(last)
    if not chain.param:
        return sum(cost(p, chain.fold) / _members(p) * math.ceil(_members(p) / threads) for _, p in chain.cells)
    total, have = 0.0, 0
    for _, params in chain.cells:  # each warm start adds the trees between two sizes
        size = _members(params)
        total += per_member * math.ceil((size - have) / threads)
        have = size
    return total


def simulate(durations: Sequence[float], slots: int) -> float:
    """Makespan of list scheduling in the given order over `slots` identical slots (each task starts on the
    first slot free), as joblib hands tasks to its worker processes."""
    free = [0.0] * max(1, slots)
    for d in durations:
        heapq.heapreplace(free, free[0] + d)
    return max(free)


@dataclass(frozen=True)
class Schedule:
    tasks: tuple[Chain, ...]  # in dispatch order, longest first
    threads: int  # threads per fit
    slots: int  # fits at once (processes)
    makespan: float  # estimated, in cost units
    work: float  # single-core cost of the work done (segments refit their first size from scratch)
    least_work: float  # the same for the chains as planned
    cores: int

    @property
    def utilisation(self) -> float:
        """Share of the cores busy from the first fit to the last."""
        return self.work / (self.cores * self.makespan) if self.makespan > 0 else 1.0

    @property
    def efficiency(self) -> float:
        """Share of the cores doing work the chains as planned would need (segments' extra trees excluded)."""
        return self.least_work / (self.cores * self.makespan) if self.makespan > 0 else 1.0


def evaluate(tasks: Sequence[Chain], cost: Cost, threads: int, cores: int, least: float | None = None) -> Schedule:
    """The schedule of `tasks` with `threads` threads per fit on `cores` cores, by `cost` (`least`: the chains'
    own work, default the tasks')."""
    if least is None:
        least = sum(task_work(t, cost) for t in tasks)
    durations = [task_duration(t, cost, threads) for t in tasks]
    order = sorted(range(len(tasks)), key=lambda i: (-durations[i], i))
    slots = max(1, min(cores // threads, len(tasks)))
    return Schedule(
        tasks=tuple(tasks[i] for i in order), threads=threads, slots=slots,
        makespan=simulate([durations[i] for i in order], slots),
        work=sum(task_work(t, cost) for t in tasks), least_work=least, cores=cores,
    )  # fmt: skip


# More threads per fit must win by this much: what the estimate leaves out costs them (scores are computed on
# one thread, and a forest's own Python work between trees does not run in parallel).
THREAD_MARGIN = 0.05


def _better(a: Schedule, b: Schedule | None) -> bool:
    if b is None:
        return True
    margin = THREAD_MARGIN if a.threads > b.threads else 1e-9
    if a.makespan < b.makespan * (1 - margin):
        return True
    return math.isclose(a.makespan, b.makespan, rel_tol=1e-9) and (a.work, a.threads) < (b.work, b.threads)


def independent(chains: Sequence[Chain]) -> list[Chain]:
    """The same cells without path reuse: one task per fit."""
    return [Chain(c.fold, (cell,)) for c in chains for cell in c.cells]


def plan_schedule(chains: Sequence[Chain], cost: Cost, cores: int, threaded: bool = False) -> Schedule:
    """The tasks, threads per fit and slots with the shortest estimated wall time on `cores` cores (see the
    module docstring). `threaded`: the fits may build their trees in threads (`threaded_fit`)."""
    cores = max(1, cores)
    least = sum(task_work(c, cost) for c in chains)
    options = list(range(1, cores + 1)) if threaded else [1]
    shapes = [list(chains)]
    if any(c.param for c in chains):
        shapes.append(independent(chains))
    best: Schedule | None = None
    for tasks in shapes:
        for threads in options:
            plan = evaluate(tasks, cost, threads, cores, least)
            if _better(plan, best):
                best = plan
    assert best is not None
    return best


BATCH_FROM = 16  # tasks per slot from which they go out in batches
MAX_BATCH = 64


def batch_sizes(n_tasks: int, slots: int) -> list[int]:
    """How many tasks each dispatch carries, in order: one each while there are few (every task streams its
    result on its own); with many (at least BATCH_FROM per slot, as a unit of tiny fits has), guided
    self-scheduling: each batch a quarter of what is left per slot, at most MAX_BATCH, shrinking to one at the
    end, so the last dispatches are as short as single tasks. Results still stream, one batch at a time."""
    if n_tasks < BATCH_FROM * max(1, slots):
        return [1] * n_tasks
    sizes: list[int] = []
    left = n_tasks
    while left:
        size = max(1, min(MAX_BATCH, left // (4 * max(1, slots))))
        sizes.append(size)
        left -= size
    return sizes


def unit_bounds(
    costs: Sequence[float], n_units: int, tail: int = 0, groups: Sequence[str] | None = None
) -> list[tuple[int, int]]:
    """`n_units` contiguous (start, stop) ranges of candidates, cut where the running cost crosses equal shares
    (estimated costs, engine.cost), not equal counts; the last `tail` ranges take half a share each (the units
    the machines take last are short, so none waits long for the last one to end). With `groups` (a key per
    candidate, equal for candidates one path-reuse chain grows through: `chain_groups`), a cut inside a group
    moves to the group's nearer edge, as long as every range keeps a candidate. Every range holds at least one
    candidate; fewer candidates than units give one range each."""
    n = len(costs)
    if not n:
        return []
    n_units = max(1, min(n_units, n))
    tail = max(0, min(tail, n_units - 1))
    shares = [1.0] * (n_units - tail) + [0.5] * tail
    weights = [max(c, 0.0) for c in costs] if any(c > 0 for c in costs) else [1.0] * n
    total = sum(weights)
    running = list(itertools.accumulate(weights, initial=0.0))
    edges = [i for i in range(1, n) if groups is None or groups[i] != groups[i - 1]]
    bounds = [0]
    target = 0.0
    for k, share in enumerate(shares[:-1]):
        target += total * share / sum(shares)
        lo, hi = bounds[-1] + 1, n - (n_units - k - 1)  # a candidate for this range and for each one after it
        allowed = [i for i in edges if lo <= i <= hi] or list(range(lo, hi + 1))
        bounds.append(min(allowed, key=lambda i: (abs(running[i] - target), i)))
    bounds.append(n)
    return list(itertools.pairwise(bounds))


def chain_groups(steps: Sequence[Sequence[str]], params: Sequence[Mapping[str, Any]]) -> list[str]:
    """A key per candidate, equal for the candidates that only differ in their path-reuse growth parameter
    (engine.reuse): a unit boundary between them would grow the same model twice."""
    growth = PATH_REUSE.get(steps[0][0]) if len(steps) == 1 else None
    keys: list[str] = []
    for p in params:
        rest = {k: v for k, v in p.items() if k != growth} if growth and growth in p else {"#": len(keys)}
        keys.append(json.dumps(rest, sort_keys=True, default=str))
    return keys

"""Peak memory of a search on a ~200 MB data set: Fanout's processes against GridSearchCV's.

Run: `.venv/bin/python bench/memory.py [--repeats N]` (default 3 alternating rounds).

Measured: `make_classification(n_samples=250000, n_features=100, n_informative=10, random_state=0)`
(X is float64, 200 MB), `LogisticRegression(max_iter=50)` with C in [0.1, 1], cv=3: 6 fits. Fanout runs
it through `manage.py runsearch` against a real qcluster (isolated temp dir, see `common.py`); the
baseline is a `python -c` subprocess running `GridSearchCV(..., n_jobs=-1, refit=False).fit(X, y)`.
A background thread samples every 0.1 s and sums PSS (and, for reference, RSS) from
`/proc/<pid>/smaps_rollup`. PSS splits shared pages (copy-on-write after fork, joblib's memmapped
arrays in /dev/shm, shared libraries) between the processes that map them, so a sum over processes
counts each page once; RSS sums count shared pages once per process and overstate.

Processes counted, by role:
- Fanout `worker`: the django-q2 worker that supervises the unit; `runner`: every
  `python -m search.engine.runner` of this installation (found by command line, started in its own
  session by the worker) and all its descendants (loky workers, resource trackers);
  `infra`: the rest of the qcluster tree (main, sentinel, monitor, pusher);
- GridSearchCV: the subprocess and all its descendants (its loky workers).

Target: peak PSS ratio fanout / gridsearchcv ≤ 1.2 (medians), where the headline Fanout figure is
worker + runner + its loky workers: everything that belongs to running the search. It includes the
warm runner's idle memory (interpreter, scikit-learn, loky pool): that runner is the one that runs the
fits, and GridSearchCV pays the same start-up inside its own process. It excludes the idle django-q2
sentinel/monitor/pusher/main processes: they exist whether or not a search runs, are shared by every
search the cluster ever runs, and have no counterpart in a one-off script. For completeness two more
ratios are printed: including those idle infra processes (the whole qcluster tree), and the increment
over the cluster's whole idle baseline (peak minus idle, which also drops the warm runner and so
flatters Fanout). The idle baseline itself is measured for 2 s before each Fanout search, once the
warm runner's loky workers are up and quiet. The `runsearch` client (which also builds the data set to
validate it) is reported separately and not in any ratio: it is the submitting command, not a worker.
Peaks shorter than the 0.1 s sampling interval can be missed, on both sides alike.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/memory.py` finds `bench`

from bench.common import (
    Bench,
    FanoutProcesses,
    Proc,
    Sampler,
    bench_cluster,
    bench_main,
    descendants,
    load_line,
    mb,
    median,
    peak,
    repeats_argument,
    table,
    typical,
    verdict,
    wait_idle_runner,
)

TARGET = 1.2
IDLE_SECONDS = 2.0
INTERVAL = 0.1
DATA_OPTIONS: dict[str, Any] = {"n_samples": 250000, "n_features": 100, "n_informative": 10, "random_state": 0}
GRID: dict[str, list[Any]] = {"C": [0.1, 1]}
CV = 3
SPEC: dict[str, Any] = {
    "name": "memory-200mb",
    "estimator": "LogisticRegression",
    "params": {"max_iter": 50},
    "param_grid": GRID,
    "dataset": {"name": "make_classification", "options": DATA_OPTIONS},
    "cv": CV,
    "n_jobs": -1,
}
BASELINE_CODE = f"""
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
X, y = make_classification(**{DATA_OPTIONS!r})
GridSearchCV(LogisticRegression(max_iter=50), {GRID!r}, cv={CV}, n_jobs=-1, refit=False).fit(X, y)
"""
SEARCH = ("worker", "runner")
CLUSTER = ("worker", "runner", "infra")


@dataclass
class FanoutRound:
    wall: float
    idle_infra: float  # kB, median over the idle window
    idle_search: float  # worker + warm runner group
    peak_search: int  # worker + runner group, at the same moment
    peak_cluster: int  # the whole qcluster tree
    peak_client: int
    peak_search_rss: int
    peak_cluster_rss: int
    idle_search_rss: float
    idle_infra_rss: float
    at_peak: dict[str, int]  # PSS per group at the sample where worker + runner peaked
    processes_at_peak: dict[str, int]
    shm_peak: int
    overhead: str

    @property
    def idle_cluster(self) -> float:
        return self.idle_infra + self.idle_search


@dataclass
class BaselineRound:
    wall: float
    peak: int
    peak_rss: int
    processes_at_peak: int
    shm_peak: int
    overhead: str


def fanout_round(bench: Bench, roles: FanoutProcesses, spec_path: Path) -> FanoutRound:
    wait_idle_runner(roles)
    sampler = Sampler(roles, interval=INTERVAL).start()
    time.sleep(IDLE_SECONDS)
    t_idle = time.perf_counter()

    def started(proc: subprocess.Popen[bytes]) -> None:
        roles.client.add(proc.pid)

    try:
        run = bench.runsearch(spec_path, on_start=started)
    finally:
        sampler.stop()
        roles.client.clear()
    idle = sampler.between(0.0, t_idle)
    during = sampler.between(t_idle, float("inf"))
    top = max(during, key=lambda s: sum(s.pss.get(g, 0) for g in SEARCH))
    return FanoutRound(
        wall=run.wall,
        idle_infra=typical(idle, ["infra"]),
        idle_search=typical(idle, SEARCH),
        peak_search=peak(during, SEARCH),
        peak_cluster=peak(during, CLUSTER),
        peak_client=peak(during, ["client"]),
        peak_search_rss=peak(during, SEARCH, "rss"),
        peak_cluster_rss=peak(during, CLUSTER, "rss"),
        idle_search_rss=typical(idle, SEARCH, "rss"),
        idle_infra_rss=typical(idle, ["infra"], "rss"),
        at_peak=dict(top.pss),
        processes_at_peak=dict(top.pids),
        shm_peak=peak(during, CLUSTER, "shm"),
        overhead=sampler.overhead(),
    )


def baseline_round(bench: Bench) -> BaselineRound:
    roots: set[int] = set()

    def groups(procs: dict[int, Proc]) -> dict[str, set[int]]:
        return {"gscv": descendants(roots, procs)}

    def started(proc: subprocess.Popen[bytes]) -> None:
        roots.add(proc.pid)

    sampler = Sampler(groups, interval=INTERVAL).start()
    try:
        wall, _ = bench.python(BASELINE_CODE, "GridSearchCV baseline", on_start=started)
    finally:
        sampler.stop()
    top = max(sampler.samples, key=lambda s: s.pss.get("gscv", 0))
    return BaselineRound(
        wall=wall,
        peak=peak(sampler.samples, ["gscv"]),
        peak_rss=peak(sampler.samples, ["gscv"], "rss"),
        processes_at_peak=top.pids.get("gscv", 0),
        shm_peak=peak(sampler.samples, ["gscv"], "shm"),
        overhead=sampler.overhead(),
    )


def measure(bench: Bench, repeats: int) -> list[tuple[FanoutRound, BaselineRound]]:
    spec_path = bench.write_spec(SPEC, "memory.json")
    roles = FanoutProcesses(cluster_pid=bench.cluster.pid, var_dir=str(bench.var_dir))
    rounds = []
    for i in range(repeats):
        fanout_first = i % 2 == 0
        if not fanout_first:
            base = baseline_round(bench)
        fan = fanout_round(bench, roles, spec_path)
        if fanout_first:
            base = baseline_round(bench)
        rounds.append((fan, base))
        order = "fanout first" if fanout_first else "gridsearchcv first"
        print(
            f"round {i + 1}/{repeats} ({order}): fanout peak {mb(fan.peak_search)} MB PSS in {fan.wall:.1f} s, "
            f"gridsearchcv peak {mb(base.peak)} MB PSS in {base.wall:.1f} s",
            flush=True,
        )
    return rounds


def report(rounds: list[tuple[FanoutRound, BaselineRound]]) -> None:
    def ratios(f: FanoutRound, b: BaselineRound) -> tuple[float, float, float]:
        return f.peak_search / b.peak, f.peak_cluster / b.peak, (f.peak_cluster - f.idle_cluster) / b.peak

    headers = ["round", "fanout MB", "cluster MB", "idle infra", "idle search", "gscv MB", "ratio",
               "incl. infra", "over idle", "fanout s", "gscv s"]  # fmt: skip
    rows: list[list[Any]] = []
    for i, (f, b) in enumerate(rounds, 1):
        r = ratios(f, b)
        rows.append([i, mb(f.peak_search), mb(f.peak_cluster), mb(f.idle_infra), mb(f.idle_search), mb(b.peak),
                     f"{r[0]:.3f}", f"{r[1]:.3f}", f"{r[2]:.3f}", f"{f.wall:.1f}", f"{b.wall:.1f}"])  # fmt: skip

    def med(values: Any) -> float:
        return median(values)

    fs, fc = med(f.peak_search for f, _ in rounds), med(f.peak_cluster for f, _ in rounds)
    fi, fsi = med(f.idle_infra for f, _ in rounds), med(f.idle_search for f, _ in rounds)
    bp = med(b.peak for _, b in rounds)
    over_idle = med(f.peak_cluster - f.idle_cluster for f, _ in rounds)
    headline, incl, excl = fs / bp, fc / bp, over_idle / bp
    rows.append(["median", mb(fs), mb(fc), mb(fi), mb(fsi), mb(bp), f"{headline:.3f}", f"{incl:.3f}", f"{excl:.3f}",
                 f"{med(f.wall for f, _ in rounds):.1f}", f"{med(b.wall for _, b in rounds):.1f}"])  # fmt: skip
    print("\npeak PSS in MB (sum over processes, sampled every 0.1 s); fanout = worker + runner + loky workers,")
    print("cluster = the whole qcluster tree, idle = before the search (infra: main/sentinel/monitor/pusher;")
    print("search: worker + warm runner); ratio = fanout / gscv, incl. infra = cluster / gscv,")
    print("over idle = (cluster peak - cluster idle) / gscv")
    print(table(headers, rows))
    print(f"\nheadline peak PSS ratio fanout / gridsearchcv: {headline:.3f}: {verdict(headline, TARGET, False)}")
    print(
        f"including the idle django-q2 infra processes: {incl:.3f}; increment over the whole idle cluster: {excl:.3f}"
    )

    rss_rows = []
    for i, (f, b) in enumerate(rounds, 1):
        rss_rows.append([i, mb(f.peak_search_rss), mb(f.peak_cluster_rss), mb(f.idle_infra_rss),
                         mb(f.idle_search_rss), mb(b.peak_rss), f"{f.peak_search_rss / b.peak_rss:.3f}"])  # fmt: skip
    print("\nfor reference, RSS sums in MB (shared pages counted once per process):")
    print(table(["round", "fanout", "cluster", "idle infra", "idle search", "gscv", "ratio"], rss_rows))

    f, b = rounds[-1]
    parts = ", ".join(f"{g} {mb(f.at_peak.get(g, 0))} MB in {f.processes_at_peak.get(g, 0)} processes" for g in SEARCH)
    print(f"\nlast round, at fanout's peak: {parts}; gscv at its peak: {b.processes_at_peak} processes")
    print(f"runsearch client peak PSS (not in any ratio): {mb(med(f.peak_client for f, _ in rounds))} MB (median)")
    print(f"joblib memmap folders in /dev/shm at peak: fanout {mb(f.shm_peak)} MB, gscv {mb(b.shm_peak)} MB")
    print(f"sampler: fanout {f.overhead}; gscv {b.overhead}")


def main(argv: list[str] | None = None) -> int:
    args = repeats_argument("Peak memory on a 200 MB data set: Fanout against GridSearchCV.", argv)

    def body() -> None:
        print(load_line("at start"), flush=True)
        with bench_cluster("memory") as bench:
            rounds = measure(bench, args.repeats)
        report(rounds)
        print(load_line("at end"))

    return bench_main(body)


if __name__ == "__main__":
    if sys.platform != "linux":
        sys.exit("bench/memory.py reads /proc/<pid>/smaps_rollup: Linux only")
    sys.exit(main())

"""Parallel efficiency on the reference grid: how much of the cores' time Fanout's fits really use.

Run: `.venv/bin/python bench/efficiency.py [--repeats N]` (default 3 alternating rounds).

Measured: the reference grid of `bench/reference_grid.py` (RandomForestClassifier, 18 candidates × 5
folds = 90 fits on make_classification 2000 × 20; the spec is imported from there) run through
`manage.py runsearch` against a real qcluster (isolated temp dir, see `common.py`), each search started
once the worker's warm runner is up and idle (untimed wait). From
`exportsearch ID --format json`:

    efficiency = speedup / processes used,  speedup = busy time / wall time

with busy time = every fit's fit + score time, wall time = the span from the first fit's start to the
last fit's end, processes = the processes that ran fits at once. The export's own `accounting`
(`search.accounting`: wall, busy, speedup, efficiency, processes) is used when it is there; the same
numbers are always also computed here from `cv_results` (Σ over candidates of (mean_fit_time +
mean_score_time) × n_splits) and `search.wall_time`, and both are printed.

Baseline, measured in the same run: a `python -c` subprocess running
`GridSearchCV(..., n_jobs=-1, refit=False)`, with the same computation: busy from its `cv_results_`,
wall = the `.fit` call (which, unlike Fanout's fit span, includes starting the loky pool and
dispatching), processes = joblib.effective_n_jobs(-1) (2 on the development machine).
Also printed: end-to-end efficiency (busy / whole-subprocess wall time / processes) for both sides.

Target: Fanout efficiency ≥ 0.90 (median of the rounds). The ratio fanout / gridsearchcv is printed
for context.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/efficiency.py` finds `bench`

from bench.common import (
    Accounting,
    Bench,
    BenchError,
    FanoutRun,
    alternating_round,
    bench_cluster,
    bench_main,
    fanout_accounting,
    load_line,
    median,
    phases_table,
    repeats_argument,
    table,
    verdict,
)
from bench.reference_grid import DATA_OPTIONS, GRID, SPEC

TARGET = 0.90
CV = int(SPEC["cv"])
N_FITS = CV * len(GRID["n_estimators"]) * len(GRID["max_depth"]) * len(GRID["min_samples_split"])
BASELINE_CODE = f"""
import json, time
import joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
X, y = make_classification(**{DATA_OPTIONS!r})
gs = GridSearchCV(RandomForestClassifier(random_state=0), {GRID!r}, cv={CV}, scoring="accuracy", n_jobs=-1,
                  refit=False)
t = time.perf_counter()
gs.fit(X, y)
wall = time.perf_counter() - t
r = gs.cv_results_
print(json.dumps({{"fit_wall": wall, "busy": float(((r["mean_fit_time"] + r["mean_score_time"]) * {CV}).sum()),
                  "n_fits": len(r["params"]) * {CV}, "n_jobs": joblib.effective_n_jobs(-1)}}))
"""


@dataclass
class Round:
    fanout: FanoutRun
    baseline_wall: float  # the whole subprocess
    baseline: Accounting  # wall = the .fit call
    computed: Accounting | None = None
    exported: Accounting | None = None

    @property
    def fanout_acc(self) -> Accounting:
        """The headline Fanout accounting: the export's own when it has one, else computed here."""
        acc = self.exported or self.computed
        assert acc is not None
        return acc


def measure(bench: Bench, repeats: int) -> list[Round]:
    spec_path = bench.write_spec(SPEC, "reference-grid.json")
    rounds: list[Round] = []
    for i in range(repeats):
        fan, base, inner = alternating_round(bench, spec_path, BASELINE_CODE, N_FITS, i)
        acc = Accounting(wall=inner["fit_wall"], busy=inner["busy"], processes=inner["n_jobs"], source="gscv")
        rounds.append(Round(fanout=fan, baseline_wall=base, baseline=acc))
        order = "fanout first" if i % 2 == 0 else "gridsearchcv first"
        print(f"round {i + 1}/{repeats} ({order}): fanout {fan.wall:.2f} s, gridsearchcv {base:.2f} s", flush=True)
    for r in rounds:
        export = bench.export(r.fanout.search_id)
        search = export["search"]
        if search["status"] != "done" or search["n_fits_done"] != N_FITS:
            raise BenchError(f"search {r.fanout.search_id} is {search['status']} with {search['n_fits_done']} fits")
        r.computed, r.exported = fanout_accounting(export)
    timelines = bench.timelines([r.fanout.search_id for r in rounds])
    report(rounds, timelines)
    return rounds


def report(rounds: list[Round], timelines: dict[int, dict[str, Any]]) -> None:
    headers = ["round", "fanout busy", "fit span", "procs", "speedup", "efficiency", "e2e eff", "gscv busy",
               ".fit wall", "procs", "speedup", "efficiency", "e2e eff", "ratio"]  # fmt: skip
    rows: list[list[Any]] = []

    def e2e(busy: float, wall: float, processes: int) -> float:
        return busy / wall / processes

    for i, r in enumerate(rounds, 1):
        f, b = r.fanout_acc, r.baseline
        rows.append([i, f"{f.busy:.2f}", f"{f.wall:.2f}", f.processes, f"{f.speedup:.2f}", f"{f.efficiency:.3f}",
                     f"{e2e(f.busy, r.fanout.wall, f.processes):.3f}", f"{b.busy:.2f}", f"{b.wall:.2f}",
                     b.processes, f"{b.speedup:.2f}", f"{b.efficiency:.3f}",
                     f"{e2e(b.busy, r.baseline_wall, b.processes):.3f}",
                     f"{f.efficiency / b.efficiency:.3f}"])  # fmt: skip
    fe = median(r.fanout_acc.efficiency for r in rounds)
    be = median(r.baseline.efficiency for r in rounds)
    fe2e = median(e2e(r.fanout_acc.busy, r.fanout.wall, r.fanout_acc.processes) for r in rounds)
    be2e = median(e2e(r.baseline.busy, r.baseline_wall, r.baseline.processes) for r in rounds)
    rows.append(["median", "", "", "", f"{median(r.fanout_acc.speedup for r in rounds):.2f}", f"{fe:.3f}",
                 f"{fe2e:.3f}", "", "", "", f"{median(r.baseline.speedup for r in rounds):.2f}", f"{be:.3f}",
                 f"{be2e:.3f}", f"{fe / be:.3f}"])  # fmt: skip
    source = rounds[-1].fanout_acc.source
    print(f"\nreference grid, {N_FITS} fits; fanout accounting from the {source}")
    print("busy and walls in seconds; efficiency = busy / wall / procs; e2e eff = busy / whole subprocess / procs")
    print(table(headers, rows))
    print(f"\nfanout efficiency (median): {fe:.3f}: {verdict(fe, TARGET, True)}")
    print(f"gridsearchcv efficiency (median): {be:.3f}; ratio fanout / gridsearchcv {fe / be:.3f}")
    if all(r.exported is None for r in rounds):
        print("the export has no `accounting` yet: Fanout's numbers were computed here from cv_results and wall_time")
    else:
        diffs = [
            (r.computed.efficiency - r.exported.efficiency)
            for r in rounds
            if r.computed is not None and r.exported is not None
        ]
        print(
            "check: efficiency computed here from cv_results + wall_time differs from the export's by at most "
            f"{max(abs(d) for d in diffs):.4f}"
        )
    print("\nwhere each round's runsearch wall time went (from the stored unit and fit timestamps):")
    print(phases_table([r.fanout for r in rounds], timelines))


def main(argv: list[str] | None = None) -> int:
    args = repeats_argument("Parallel efficiency of Fanout on the reference grid.", argv)

    def body() -> None:
        print(load_line("at start"), flush=True)
        with bench_cluster("efficiency") as bench:
            measure(bench, args.repeats)
        print(load_line("at end"))

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

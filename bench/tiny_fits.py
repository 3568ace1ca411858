"""Throughput on tiny fits: 2,000 LogisticRegression fits on iris, Fanout end to end against GridSearchCV.

Run: `.venv/bin/python bench/tiny_fits.py [--repeats N]` (default 3 alternating rounds).

Measured: `manage.py runsearch SPEC.json` against a real qcluster (isolated temp dir, see `common.py`)
with the grid `C` = 400 values of geomspace(1e-3, 1e3) rounded to 6 significant digits, `max_iter=200`,
cv=5 (400 × 5 = 2,000 fits, each a few milliseconds), against a `python -c` subprocess running
`GridSearchCV(LogisticRegression(max_iter=200), grid, cv=5, n_jobs=-1, refit=False).fit(X, y)`.
Before each Fanout search the benchmark waits until the worker's warm runner is up and idle (as on a
cluster that was idle; untimed). Both are timed as whole subprocesses (interpreter start-up and
imports included); fits per second = 2,000 / that wall time. Each round alternates which side goes first.

Targets (issue 15): LogisticRegression, end-to-end throughput ≥ 0.9 of the serial limit (2,000 fits over
GridSearchCV's busy time divided by its processes, the median round's); RidgeClassifier (`--ridge`), throughput
ratio fanout / gridsearchcv ≥ 1.30 (medians). Here the per-fit overhead of Fanout
(one JSON event per fit, results written to the database, work units, the runner hand-off) is all
there is to see: the fits themselves take almost nothing.

Also printed, for diagnosis: the fit-span throughput of both sides (Fanout: first fit start to last fit
end of the search; GridSearchCV: the `.fit` call) and where each Fanout round's wall time went.
With `--profile`, one more (untimed) search per side afterwards, with CPU seconds per process role.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/tiny_fits.py` finds `bench`

from bench.common import (
    Bench,
    BenchError,
    FanoutProcesses,
    FanoutRun,
    Proc,
    Sampler,
    alternating_round,
    bench_cluster,
    bench_main,
    descendants,
    fanout_accounting,
    load_line,
    median,
    phases_table,
    table,
    verdict,
)

TARGET = 0.9  # LogisticRegression: of the serial limit (GridSearchCV's busy time over the cores), end to end
RIDGE_TARGET = 1.30  # RidgeClassifier: throughput against GridSearchCV's, end to end
C_VALUES: list[float] = [float(f"{c:.6g}") for c in np.geomspace(1e-3, 1e3, 400)]
GRID: dict[str, list[Any]] = {"C": C_VALUES}
CV = 5
N_FITS = len(C_VALUES) * CV
SPEC: dict[str, Any] = {
    "name": "tiny-fits",
    "estimator": "LogisticRegression",
    "params": {"max_iter": 200},
    "param_grid": GRID,
    "dataset": {"name": "iris"},
    "cv": CV,
    "n_jobs": -1,
    "refit": False,  # the same work as the baseline's refit=False
}
LABEL = f"LogisticRegression fits on iris ({len(C_VALUES)} candidates × cv={CV})"
BASELINE_CODE = f"""
import json, time
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
X, y = load_iris(return_X_y=True)
t = time.perf_counter()
gs = GridSearchCV(LogisticRegression(max_iter=200), {GRID!r}, cv={CV}, n_jobs=-1, refit=False).fit(X, y)
wall = time.perf_counter() - t
r = gs.cv_results_
print(json.dumps({{"fit_wall": wall, "busy": float(((r["mean_fit_time"] + r["mean_score_time"]) * {CV}).sum()),
                  "n_fits": len(r["params"]) * {CV}, "n_jobs": joblib.effective_n_jobs(-1)}}))
"""


# `--ridge`: 1,500 tiny RidgeClassifier fits (300 alphas × cv=5) on the digits data set, the same way.
RIDGE_ALPHAS: list[float] = [float(f"{a:.6g}") for a in np.geomspace(1e-4, 1e4, 300)]
RIDGE_SPEC: dict[str, Any] = {
    "name": "tiny-ridge", "estimator": "RidgeClassifier", "param_grid": {"alpha": RIDGE_ALPHAS},
    "dataset": {"name": "digits"}, "cv": CV, "n_jobs": -1, "refit": False,
}  # fmt: skip
RIDGE_CODE = (
    BASELINE_CODE.replace("load_iris", "load_digits")
    .replace("from sklearn.linear_model import LogisticRegression", "from sklearn.linear_model import RidgeClassifier")
    .replace("LogisticRegression(max_iter=200)", "RidgeClassifier()")
    .replace(repr(GRID), repr({"alpha": RIDGE_ALPHAS}))
)


RIDGE = False


def use_ridge() -> None:
    """Switch this module's case to the RidgeClassifier one."""
    global SPEC, BASELINE_CODE, N_FITS, LABEL, RIDGE
    SPEC, BASELINE_CODE, N_FITS, RIDGE = RIDGE_SPEC, RIDGE_CODE, len(RIDGE_ALPHAS) * CV, True
    LABEL = f"RidgeClassifier fits on digits ({len(RIDGE_ALPHAS)} candidates × cv={CV})"


def measure(bench: Bench, repeats: int) -> None:
    spec_path = bench.write_spec(SPEC, "tiny-fits.json")
    runs: list[tuple[FanoutRun, float, dict[str, Any]]] = []
    for i in range(repeats):
        fan, base, inner = alternating_round(bench, spec_path, BASELINE_CODE, N_FITS, i)
        runs.append((fan, base, inner))
        order = "fanout first" if i % 2 == 0 else "gridsearchcv first"
        print(f"round {i + 1}/{repeats} ({order}): fanout {fan.wall:.2f} s, gridsearchcv {base:.2f} s", flush=True)
    exports = {fan.search_id: bench.export(fan.search_id) for fan, _, _ in runs}
    timelines = bench.timelines([fan.search_id for fan, _, _ in runs])
    report(runs, exports, timelines)


def report(
    runs: list[tuple[FanoutRun, float, dict[str, Any]]],
    exports: dict[int, dict[str, Any]],
    timelines: dict[int, dict[str, Any]],
) -> None:
    rows = []
    spans = []
    for i, (fan, base, inner) in enumerate(runs, 1):
        search = exports[fan.search_id]["search"]
        if search["n_fits_done"] != N_FITS or search["status"] != "done":
            raise BenchError(f"search {fan.search_id} is {search['status']} with {search['n_fits_done']} fits")
        span = float(search["wall_time"])
        spans.append((span, inner["fit_wall"]))
        rows.append(
            [
                i,
                f"{fan.wall:.2f}",
                f"{N_FITS / fan.wall:.0f}",
                f"{base:.2f}",
                f"{N_FITS / base:.0f}",
                f"{base / fan.wall:.3f}",
                f"{N_FITS / span:.0f}",
                f"{N_FITS / inner['fit_wall']:.0f}",
            ]
        )
    fan_med = median(f.wall for f, _, _ in runs)
    base_med = median(b for _, b, _ in runs)
    ratio = base_med / fan_med  # throughput ratio: (N / fan) / (N / base)
    span_fan, span_base = median(s[0] for s in spans), median(s[1] for s in spans)
    rows.append(
        [
            "median",
            f"{fan_med:.2f}",
            f"{N_FITS / fan_med:.0f}",
            f"{base_med:.2f}",
            f"{N_FITS / base_med:.0f}",
            f"{ratio:.3f}",
            f"{N_FITS / span_fan:.0f}",
            f"{N_FITS / span_base:.0f}",
        ]
    )
    headers = ["round", "fanout s", "fanout fits/s", "gscv s", "gscv fits/s", "ratio", "fanout span fits/s",
               "gscv .fit fits/s"]  # fmt: skip
    print(f"\n{N_FITS} {LABEL}, end to end")
    print(table(headers, rows))
    ratio_verdict = verdict(ratio, RIDGE_TARGET, True) if RIDGE else "for diagnosis"
    print(f"\nthroughput ratio fanout / gridsearchcv (medians, end to end): {ratio:.3f}: {ratio_verdict}")
    limit = N_FITS / median(inner["busy"] / inner["n_jobs"] for _, _, inner in runs)
    share = N_FITS / fan_med / limit
    print(
        f"serial limit (GridSearchCV's busy time over its {runs[0][2]['n_jobs']} processes, median): {limit:.0f} "
        f"fits/s; fanout end to end reaches {share:.3f} of it" + ("" if RIDGE else f": {verdict(share, TARGET, True)}")
    )
    print(f"fit-span throughput ratio (search wall_time vs the .fit call, for diagnosis): {span_base / span_fan:.3f}")
    last, _, inner = runs[-1]
    export = exports[last.search_id]
    computed, exported = fanout_accounting(export)
    search = export["search"]
    units = search["units"]
    print(
        f"\nlast search: {len(units)} work units, processes used per unit "
        f"{[u['processes_used'] for u in units]}, cores_used {search['cores_used']}, "
        f"fit span {search['wall_time']:.2f} s"
    )
    for acc in (computed, exported):
        if acc is not None:
            print(
                f"  accounting ({acc.source}): busy {acc.busy:.2f} s, wall {acc.wall:.2f} s, speedup "
                f"{acc.speedup:.2f}, processes {acc.processes}, efficiency {acc.efficiency:.2f}"
            )
    if exported is None:
        print("  (the export has no `accounting` yet: computed here from cv_results and wall_time)")
    print(
        f"  gridsearchcv: busy {inner['busy']:.2f} s over {inner['fit_wall']:.2f} s of .fit "
        f"with {inner['n_jobs']} processes"
    )
    print("\nwhere each round's runsearch wall time went (from the stored unit and fit timestamps):")
    print(phases_table([fan for fan, _, _ in runs], timelines))


def profile(bench: Bench) -> None:
    """One more search on each side (untimed for the ratio) with CPU seconds sampled per process role."""
    spec_path = bench.var_dir / "tiny-fits.json"
    roles = FanoutProcesses(cluster_pid=bench.cluster.pid, var_dir=str(bench.var_dir))

    def fanout_groups(procs: dict[int, Proc]) -> dict[str, set[int]]:
        g = roles(procs)
        mains = roles.runners(procs)
        return {"runsearch client": g["client"], "runner main": mains & g["runner"],
                "runner loky workers": g["runner"] - mains, "django-q2 worker (supervisor)": g["worker"],
                "django-q2 main/sentinel/monitor/pusher": g["infra"]}  # fmt: skip

    def client_started(proc: subprocess.Popen[bytes]) -> None:
        roles.client.add(proc.pid)

    bench.wait_warm_runner()
    sampler = Sampler(fanout_groups, memory=False).start()
    try:
        fan = bench.runsearch(spec_path, on_start=client_started)
    finally:
        sampler.stop()
    fan_cpu = sampler.cpu_by_group(since_first_seen=True)
    roots: set[int] = set()

    def base_groups(procs: dict[int, Proc]) -> dict[str, set[int]]:
        tree = descendants(roots, procs)
        return {"gscv main": tree & roots, "gscv loky workers": tree - roots}

    def base_started(proc: subprocess.Popen[bytes]) -> None:
        roots.add(proc.pid)

    sampler = Sampler(base_groups, memory=False).start()
    try:
        base, _ = bench.python(BASELINE_CODE, "GridSearchCV baseline", on_start=base_started)
    finally:
        sampler.stop()
    base_cpu = sampler.cpu_by_group(since_first_seen=True)
    print("\nCPU seconds by process role during one more search on each side (sampled every 0.1 s):")
    rows = [[f"fanout: {k}", f"{v:.2f}"] for k, v in fan_cpu.items()]
    rows.append(["fanout: total", f"{sum(fan_cpu.values()):.2f} of {2 * fan.wall:.2f} core-s in {fan.wall:.2f} s"])
    rows += [[k, f"{v:.2f}"] for k, v in base_cpu.items()]
    rows.append(["gscv: total", f"{sum(base_cpu.values()):.2f} of {2 * base:.2f} core-s in {base:.2f} s"])
    print(table(["role", "CPU s"], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Throughput on 2,000 tiny fits: Fanout against GridSearchCV.")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds to run (default 3)")
    parser.add_argument(
        "--profile", action="store_true", help="afterwards, one more search per side with CPU seconds per process role"
    )
    parser.add_argument("--ridge", action="store_true", help="1,500 RidgeClassifier fits on digits instead")
    args = parser.parse_args(argv)
    if args.ridge:
        use_ridge()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    def body() -> None:
        print(load_line("at start"), flush=True)
        with bench_cluster("tiny-fits") as bench:
            measure(bench, args.repeats)
            if args.profile:
                profile(bench)
        print(load_line("at end"))

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

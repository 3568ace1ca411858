"""Fixed costs of a short search: 40 RandomForest fits (about 10 s of CPU) through `runsearch`, phase by phase.

Run: `.venv/bin/python bench/short_grid.py [--repeats N] [--no-refit] [--no-path-reuse]` (default 3 rounds).

Measured: `manage.py runsearch SPEC.json --timings` against a warm real qcluster (isolated temp dir, see
`common.py`) with RandomForestClassifier(random_state=0), `n_estimators` [25, 50, 100, 200] × `max_features`
["sqrt", 0.5] on make_classification(2000 × 20), cv=5 (40 fits), against a `python -c` subprocess running
`GridSearchCV(RandomForestClassifier(random_state=0), grid, cv=5, n_jobs=-1).fit(X, y)`. Both refit the best
candidate on every row by default (Fanout's `refit` is on unless the spec says otherwise: what a user gets);
`--no-refit` turns it off on both sides. Both are timed as whole subprocesses; rounds alternate which goes
first; the split scores are checked equal before any ratio is printed.

Path reuse is on as it is by default (Fanout grows one forest per (max_features, fold) to 200 trees and scores
it at 25, 50, 100 and 200: the same scores with fewer trees); `--no-path-reuse` starts the cluster with
FANOUT_PATH_REUSE=0, so both sides fit the same 40 forests.

Each Fanout run's phases come from `runsearch --timings` (client side: process start, Django ready, spec
validated, estimated, search stored, search done, summary printed) and the rows' stored timestamps (data checked
= the search row's creation, first unit claimed, first and last fit, refit claimed and ended); process exit is
seen here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/short_grid.py` finds `bench`

from bench.common import (
    Bench,
    BenchError,
    FanoutRun,
    bench_cluster,
    bench_main,
    last_json_line,
    load_line,
    median,
    runsearch_timed,
    table,
    verdict,
)

DESCRIPTION = "Benchmark the fixed costs of a short search: 40 RandomForest fits, Fanout against GridSearchCV."
TARGET_RATIO = 0.80  # issue 15
N_ESTIMATORS = [25, 50, 100, 200]
GRID: dict[str, list[Any]] = {"n_estimators": N_ESTIMATORS, "max_features": ["sqrt", 0.5]}
DATA_OPTIONS: dict[str, Any] = {"n_samples": 2000, "n_features": 20, "n_informative": 8, "random_state": 0}
CV = 5
N_FITS = len(N_ESTIMATORS) * 2 * CV
PHASES = ("process start", "django ready", "spec validated", "estimated", "data checked", "search stored",
          "first unit claimed", "first fit started", "last fit ended", "refit claimed", "refit ended",
          "search done", "summary printed", "process exit")  # fmt: skip


def spec(refit: bool) -> dict[str, Any]:
    return {
        "name": "short-grid",
        "estimator": "RandomForestClassifier",
        "params": {"random_state": 0},
        "param_grid": GRID,
        "dataset": {"name": "make_classification", "options": DATA_OPTIONS},
        "cv": CV,
        "scoring": "accuracy",
        "n_jobs": -1,
        "refit": refit,
    }


def baseline_code(refit: bool) -> str:
    return f"""
import json, time
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
X, y = make_classification(**{DATA_OPTIONS!r})
t = time.perf_counter()
gs = GridSearchCV(RandomForestClassifier(random_state=0), {GRID!r}, cv={CV}, scoring="accuracy", n_jobs=-1,
                  refit={refit!r}).fit(X, y)
wall = time.perf_counter() - t
r = gs.cv_results_
busy = float(sum((f + s) * {CV} for f, s in zip(r["mean_fit_time"], r["mean_score_time"])))
print(json.dumps({{"fit_wall": wall, "n_fits": len(r["params"]) * {CV}, "busy": busy,
                  "refit_time": getattr(gs, "refit_time_", None),
                  "splits": [r[f"split{{k}}_test_score"].tolist() for k in range({CV})]}}))
"""


def check(export: dict[str, Any], inner: dict[str, Any], refit: bool) -> None:
    """The search is done with every fit, refitted when asked, and every split score equals GridSearchCV's."""
    search, results = export["search"], export["cv_results"]
    if search["status"] != "done" or search["n_fits_done"] != N_FITS:
        raise BenchError(f"search {search['id']} is {search['status']} with {search['n_fits_done']} fits")
    if refit and (search.get("refit_error") or search.get("refit_time") is None):
        raise BenchError(f"search {search['id']} has no refitted model: {search.get('refit_error')}")
    ours = [results[f"split{k}_test_score"] for k in range(CV)]
    if ours != inner["splits"]:
        raise BenchError(f"search {search['id']}: split scores differ from GridSearchCV's")


Round = tuple[FanoutRun, dict[str, float | None], float, dict[str, Any]]


def one_round(bench: Bench, spec_path: Path, code: str, i: int) -> Round:
    """Fanout then GridSearchCV, or the other way round every other round (as common.alternating_round)."""
    fanout_first = i % 2 == 0
    if not fanout_first:
        base, out = bench.python(code, "GridSearchCV baseline")
    bench.wait_warm_runner()
    fan, timings = runsearch_timed(bench, spec_path)
    if fanout_first:
        base, out = bench.python(code, "GridSearchCV baseline")
    inner = last_json_line(out, "GridSearchCV baseline")
    if inner["n_fits"] != N_FITS:
        raise BenchError(f"GridSearchCV baseline ran {inner['n_fits']} fits, expected {N_FITS}")
    return fan, timings, base, inner


def phase_rows(runs: list[Round]) -> list[list[str]]:
    """One row per phase: seconds since the phase before, per round, and their median."""
    rows = []
    for k, name in enumerate(PHASES):
        cells, values = [name], []
        for _, timings, _, _ in runs:
            t, before = (
                timings.get(name),
                next((timings[p] for p in reversed(PHASES[:k]) if timings.get(p) is not None), None),
            )
            if t is None or before is None:
                cells.append("n/a" if t is None else "0.00")
                continue
            values.append(t - before)
            cells.append(f"{t - before:.2f}")
        cells.append(f"{median(values):.2f}" if values else "n/a")
        rows.append(cells)
    return rows


def report(runs: list[Round], refit: bool, path_reuse: bool) -> None:
    rows = []
    for i, (fan, timings, base, inner) in enumerate(runs, 1):
        first, last = timings.get("first fit started"), timings.get("last fit ended")
        span = f"{last - first:.2f}" if first is not None and last is not None else "n/a"
        rows.append([i, f"{fan.wall:.2f}", f"{base:.2f}", f"{fan.wall / base:.3f}", span,
                     f"{inner['fit_wall']:.2f}", f"{inner['busy']:.1f}"])  # fmt: skip
    fan_med, base_med = median(r[0].wall for r in runs), median(r[2] for r in runs)
    rows.append(["median", f"{fan_med:.2f}", f"{base_med:.2f}", f"{fan_med / base_med:.3f}", "", "", ""])
    both = "both refit the best candidate" if refit else "neither refits"
    reuse = "path reuse on (the default)" if path_reuse else "path reuse off (FANOUT_PATH_REUSE=0)"
    print(f"\nRandomForestClassifier, n_estimators {N_ESTIMATORS} × max_features [sqrt, 0.5], cv={CV}: {N_FITS} fits; "
          f"{both}; {reuse}")  # fmt: skip
    headers = ["round", "fanout s", "gscv s", "ratio", "fanout CV fit span s", "gscv .fit s", "gscv busy CPU s"]
    print(table(headers, rows))
    print("\nFanout phases (s since the phase before; the rows' timestamps and runsearch --timings)")
    print(table(["phase", *(f"round {i}" for i in range(1, len(runs) + 1)), "median"], phase_rows(runs)))
    ratio = fan_med / base_med
    print(f"\nratio fanout / gridsearchcv (medians, end to end, {both}): {ratio:.3f} "
          f"{verdict(ratio, TARGET_RATIO, higher_is_better=False)}")  # fmt: skip
    print("split scores: equal to GridSearchCV's in every round")
    print(load_line("at the end"))
    print(json.dumps({"ratio": ratio, "fanout": fan_med, "gridsearchcv": base_med, "refit": refit,
                      "path_reuse": path_reuse}))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds to run (default 3)")
    parser.add_argument("--no-refit", action="store_true", help="neither side refits the best candidate")
    parser.add_argument("--no-path-reuse", action="store_true", help="the cluster runs with FANOUT_PATH_REUSE=0")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    refit, path_reuse = not args.no_refit, not args.no_path_reuse

    def body() -> None:
        extra = {} if path_reuse else {"FANOUT_PATH_REUSE": "0"}
        with bench_cluster("short-grid", extra) as bench:
            spec_path = bench.write_spec(spec(refit), "short-grid.json")
            code = baseline_code(refit)
            print(load_line("at the start"), flush=True)
            runs: list[Round] = []
            for i in range(args.repeats):
                fan, timings, base, inner = one_round(bench, spec_path, code, i)
                check(bench.export(fan.search_id), inner, refit)
                runs.append((fan, timings, base, inner))
                order = "fanout first" if i % 2 == 0 else "gridsearchcv first"
                print(f"round {i + 1}/{args.repeats} ({order}): fanout {fan.wall:.2f} s, gridsearchcv {base:.2f} s",
                      flush=True)  # fmt: skip
            report(runs, refit, path_reuse)

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

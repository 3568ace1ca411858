"""Path reuse: a RandomForest grid over `n_estimators` [50, 100, 200, 400], Fanout against GridSearchCV.

Run: `.venv/bin/python bench/path_reuse.py [--repeats N]` (default 3 alternating rounds).

Measured: `manage.py runsearch SPEC.json` against a real qcluster (isolated temp dir, see `common.py`;
reuse across searches is off there, so every round fits) with RandomForestClassifier(random_state=0),
`n_estimators` [50, 100, 200, 400] × `max_features` ["sqrt", 0.5] on make_classification(3000 × 20),
cv=5 (40 fits), against a `python -c` subprocess running
`GridSearchCV(RandomForestClassifier(random_state=0), grid, cv=5, n_jobs=-1, refit=False).fit(X, y)`.
Both are timed as whole subprocesses; rounds alternate which side goes first.

With path reuse, Fanout grows one forest per (max_features, fold) to 400 trees and scores it at 50, 100,
200 and 400 trees (30 of the 40 fits saved): 4,000 trees instead of GridSearchCV's 7,500, so the
expected ratio is a little above 4,000 / 7,500 = 0.53. The scores are checked equal to GridSearchCV's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/path_reuse.py` finds `bench`

from bench.common import (
    Bench,
    BenchError,
    FanoutRun,
    alternating_round,
    bench_cluster,
    bench_main,
    load_line,
    median,
    repeats_argument,
    table,
)

DESCRIPTION = "Benchmark path reuse: a RandomForest n_estimators grid, Fanout against GridSearchCV."
N_ESTIMATORS = [50, 100, 200, 400]
GRID: dict[str, list[Any]] = {"n_estimators": N_ESTIMATORS, "max_features": ["sqrt", 0.5]}
DATA_OPTIONS: dict[str, Any] = {"n_samples": 3000, "n_features": 20, "n_informative": 8, "random_state": 0}
CV = 5
N_FITS = len(N_ESTIMATORS) * 2 * CV
SPEC: dict[str, Any] = {
    "name": "path-reuse",
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": GRID,
    "dataset": {"name": "make_classification", "options": DATA_OPTIONS},
    "cv": CV,
    "scoring": "accuracy",
    "n_jobs": -1,
}
BASELINE_CODE = f"""
import json, time
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
X, y = make_classification(**{DATA_OPTIONS!r})
t = time.perf_counter()
gs = GridSearchCV(RandomForestClassifier(random_state=0), {GRID!r}, cv={CV}, scoring="accuracy", n_jobs=-1,
                  refit=False).fit(X, y)
wall = time.perf_counter() - t
r = gs.cv_results_
print(json.dumps({{"fit_wall": wall, "n_fits": len(r["params"]) * {CV},
                  "splits": [r[f"split{{k}}_test_score"].tolist() for k in range({CV})]}}))
"""


def check(export: dict[str, Any], inner: dict[str, Any]) -> None:
    """The search is done, saved 30 fits, and every split score equals GridSearchCV's."""
    search, results = export["search"], export["cv_results"]
    if search["status"] != "done" or search["n_fits_done"] != N_FITS:
        raise BenchError(f"search {search['id']} is {search['status']} with {search['n_fits_done']} fits")
    ours = [results[f"split{k}_test_score"] for k in range(CV)]
    if ours != inner["splits"]:
        raise BenchError(f"search {search['id']}: split scores differ from GridSearchCV's")


def measure(bench: Bench, repeats: int) -> None:
    spec_path = bench.write_spec(SPEC, "path-reuse.json")
    runs: list[tuple[FanoutRun, float, dict[str, Any]]] = []
    print(load_line("at the start"), flush=True)
    for i in range(repeats):
        fan, base, inner = alternating_round(bench, spec_path, BASELINE_CODE, N_FITS, i)
        export = bench.export(fan.search_id)
        check(export, inner)
        runs.append((fan, base, {**inner, "search": export["search"]}))
        order = "fanout first" if i % 2 == 0 else "gridsearchcv first"
        print(f"round {i + 1}/{repeats} ({order}): fanout {fan.wall:.2f} s, gridsearchcv {base:.2f} s", flush=True)
    report(runs)


def report(runs: list[tuple[FanoutRun, float, dict[str, Any]]]) -> None:
    rows = []
    for i, (fan, base, inner) in enumerate(runs, 1):
        search = inner["search"]
        rows.append([i, f"{fan.wall:.2f}", f"{base:.2f}", f"{fan.wall / base:.3f}", f"{search['wall_time']:.2f}",
                     f"{inner['fit_wall']:.2f}", search["fits_saved"]])  # fmt: skip
    fan_med, base_med = median(f.wall for f, _, _ in runs), median(b for _, b, _ in runs)
    span_med = median(float(inner["search"]["wall_time"]) for _, _, inner in runs)
    fit_med = median(float(inner["fit_wall"]) for _, _, inner in runs)
    rows.append(["median", f"{fan_med:.2f}", f"{base_med:.2f}", f"{fan_med / base_med:.3f}", f"{span_med:.2f}",
                 f"{fit_med:.2f}", ""])  # fmt: skip
    headers = ["round", "fanout s", "gscv s", "ratio", "fanout fit span s", "gscv .fit s", "fits saved"]
    print(f"\nRandomForestClassifier, n_estimators {N_ESTIMATORS} × max_features [sqrt, 0.5], cv={CV}: {N_FITS} fits")
    print(table(headers, rows))
    print(f"\nratio fanout / gridsearchcv (medians, end to end): {fan_med / base_med:.3f}")
    print(f"fit-span ratio (search wall_time vs the .fit call, for diagnosis): {span_med / fit_med:.3f}")
    print("split scores: equal to GridSearchCV's in every round")
    print(load_line("at the end"))
    print(json.dumps({"ratio": fan_med / base_med, "fanout": fan_med, "gridsearchcv": base_med,
                      "fit_span_ratio": span_med / fit_med}))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = repeats_argument(DESCRIPTION, argv)

    def body() -> None:
        with bench_cluster("path-reuse") as bench:
            measure(bench, args.repeats)

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

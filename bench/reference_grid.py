"""Reference benchmark: Fanout (runsearch + a real qcluster) against a plain GridSearchCV, end to end.

Run from anywhere: `.venv/bin/python bench/reference_grid.py [--repeats N] [--json]`.
Both sides are timed as whole subprocesses, so both pay interpreter start-up and imports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # so `python bench/reference_grid.py` finds the project's modules

from bench.common import BenchError, bench_cluster, manage, run  # noqa: E402

DESCRIPTION = "Benchmark Fanout (runsearch + qcluster) against GridSearchCV on the reference grid."
TARGET_RATIO = 0.95  # issue 4: faster than scikit-learn (issue 2 asked for at most 1.10)
PATH_REUSE = os.environ.get("FANOUT_PATH_REUSE", "1") not in ("0", "false", "no", "off")

GRID: dict[str, list[Any]] = {"n_estimators": [50, 100, 200], "max_depth": [None, 5, 10], "min_samples_split": [2, 5]}
DATA_OPTIONS: dict[str, Any] = {
    "n_samples": 2000,
    "n_features": 20,
    "n_informative": 5,
    "n_redundant": 10,
    "random_state": 0,
}
SPEC: dict[str, Any] = {
    "name": "reference-grid",
    "estimator": "RandomForestClassifier",
    "params": {"random_state": 0},
    "param_grid": GRID,
    "dataset": {"name": "make_classification", "options": DATA_OPTIONS},
    "cv": 5,
    "scoring": "accuracy",
    "n_jobs": -1,
    "refit": False,  # the same work as the baseline's refit=False (a Fanout search refits by default)
}
BASELINE_CODE = f"""
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV
X, y = make_classification(**{DATA_OPTIONS!r})
GridSearchCV(RandomForestClassifier(random_state=0), {GRID!r}, cv=5, scoring="accuracy", n_jobs=-1,
             refit=False).fit(X, y)
"""


def time_fanout(env: dict[str, str], spec_path: Path, cluster: subprocess.Popen[bytes]) -> tuple[float, int]:
    """Wall time of `runsearch SPEC.json` and the id of the search it created."""
    elapsed, out = run(manage("runsearch", str(spec_path)), env, "runsearch", cluster)
    first = next((line for line in out.splitlines() if line.startswith("search ")), "")
    try:
        return elapsed, int(first.split()[1])
    except (IndexError, ValueError):
        raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None


def time_baseline(env: dict[str, str]) -> float:
    return run([sys.executable, "-c", BASELINE_CODE], env, "GridSearchCV baseline")[0]


def search_stats(env: dict[str, str], search_id: int) -> dict[str, Any]:
    out = run(manage("exportsearch", str(search_id), "--format", "json"), env, "exportsearch")[1]
    search = json.loads(out)["search"]
    return {
        "cores_used": search.get("cores_used"), "wall_time": search.get("wall_time"),
        "fits_saved": search.get("fits_saved"), "path_reuse": PATH_REUSE,
    }  # fmt: skip


def measure(
    env: dict[str, str], spec_path: Path, cluster: subprocess.Popen[bytes], repeats: int
) -> tuple[list[tuple[float, float]], int]:
    rounds: list[tuple[float, float]] = []
    search_id = -1
    for i in range(repeats):
        fanout_first = i % 2 == 0  # a,b then b,a: neither side always runs on a warm machine
        if not fanout_first:
            base = time_baseline(env)
        fan, search_id = time_fanout(env, spec_path, cluster)
        if fanout_first:
            base = time_baseline(env)
        rounds.append((fan, base))
        order = "fanout, gridsearchcv" if fanout_first else "gridsearchcv, fanout"
        print(f"round {i + 1}/{repeats} ({order}): fanout {fan:.2f} s, gridsearchcv {base:.2f} s", flush=True)
    return rounds, search_id


def report(rounds: list[tuple[float, float]], stats: dict[str, Any], as_json: bool) -> None:
    fan = statistics.median(r[0] for r in rounds)
    base = statistics.median(r[1] for r in rounds)
    ratio = fan / base
    print("\nround  fanout (s)  gridsearchcv (s)  ratio")
    for i, (f, b) in enumerate(rounds, 1):
        print(f"{i:>5}  {f:>10.2f}  {b:>16.2f}  {f / b:>5.2f}")
    print(f"median {fan:>10.2f}  {base:>16.2f}  {ratio:>5.2f}")
    verdict = "within" if ratio <= TARGET_RATIO else "ABOVE"
    print(f"\nratio fanout / gridsearchcv: {ratio:.3f} ({verdict} target {TARGET_RATIO:.2f})")
    print(f"cpu_count: {os.cpu_count()}")
    wall = "n/a" if stats["wall_time"] is None else f"{stats['wall_time']:.2f} s"
    print(f"last search: cores_used {stats['cores_used']}, fit-span wall time {wall}")
    reuse = "on" if PATH_REUSE else "off (FANOUT_PATH_REUSE=0: every size fitted alone, as GridSearchCV does)"
    print(f"path reuse: {reuse}; fits grown instead of refitted: {stats['fits_saved']}")
    print("both sides timed as whole subprocesses (interpreter start-up and imports included)")
    if as_json:
        summary = {
            "rounds": [{"fanout": f, "gridsearchcv": b} for f, b in rounds],
            "median_fanout": fan,
            "median_gridsearchcv": base,
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "cpu_count": os.cpu_count(),
            **stats,
        }
        print(json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds to run (default 3)")
    parser.add_argument("--json", action="store_true", help="also print the final numbers as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        with bench_cluster("reference") as bench:
            spec_path = bench.write_spec(SPEC, "reference-grid.json")
            rounds, search_id = measure(bench.env, spec_path, bench.cluster, args.repeats)
            stats = search_stats(bench.env, search_id)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report(rounds, stats, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

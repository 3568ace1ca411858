"""Fair share between users: a small search by a second user, submitted while a big one runs.

Run: `.venv/bin/python bench/fair_share.py [--candidates N] [--repeats R] [--fifo]` (default 20,000 candidates,
1 round of each mode).

Measured, on a real qcluster in an isolated temp dir (`common.py`), once with fair share on
(FANOUT_FAIR_SHARE=1, the default) and once with it off (first come, first served: FANOUT_FAIR_SHARE=0), the
order alternating from round to round: user A submits a DecisionTreeClassifier grid on iris of N candidates × 5
folds (`runsearch --owner alice --no-wait`; 20,000 × 5 = 100,000 fits by default) and the benchmark waits until it
is running; then user B submits 8 candidates × 3 folds = 24 fits (`runsearch --owner bob`, which waits for it).
Reported: B's seconds from submission (its `created_at`) to done (`finished_at`), and the wall time of B's whole
`runsearch`; A's seconds from submission to done. `--fifo` runs the first-come-first-served rounds only.

Target: B done ≤ 20 s after submission with fair share on (first come, first served: the whole of A first).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/fair_share.py` finds `bench`

from bench.common import (
    Bench,
    BenchError,
    bench_cluster,
    bench_main,
    load_line,
    manage,
    median,
    run,
    table,
)

TARGET = 20.0
B_SPEC: dict[str, Any] = {
    "name": "fair-share-small", "estimator": "DecisionTreeClassifier", "params": {"random_state": 0},
    "param_grid": {"max_depth": list(range(1, 9))}, "dataset": {"name": "iris"}, "cv": 3, "refit": False,
}  # fmt: skip
USERS_CODE = """
from django.contrib.auth.models import User
for name in ("alice", "bob"):
    User.objects.get_or_create(username=name)
"""


def big_spec(candidates: int) -> dict[str, Any]:
    """A's grid: max_depth × min_samples_split (20) × min_samples_leaf (10), max_depth long enough for
    `candidates` (rounded up to a multiple of 200)."""
    depths = math.ceil(candidates / 200)
    grid = {"max_depth": list(range(1, depths + 1)), "min_samples_split": list(range(2, 22)),
            "min_samples_leaf": list(range(1, 11))}  # fmt: skip
    return {"name": "fair-share-big", "estimator": "DecisionTreeClassifier", "params": {"random_state": 0},
            "param_grid": grid, "dataset": {"name": "iris"}, "cv": 5, "refit": False}  # fmt: skip


def searches(bench: Bench, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The searches' rows, read from the benchmark's SQLite file in this process: a `manage.py shell` per poll
    (a whole Django and scikit-learn start, about 3 s of CPU here) took most of a core from the searches
    being measured, for as long as A ran after B (fair share's rounds only), and made A look 40-60 % slower."""
    marks = ",".join("?" * len(ids))
    with closing(sqlite3.connect(bench.var_dir / "fanout.sqlite3", timeout=30)) as db:
        rows = db.execute(
            f"SELECT id, status, n_fits, n_fits_done, created_at, finished_at FROM search_search WHERE id IN ({marks})",
            ids,
        ).fetchall()
    return {
        pk: {"pk": pk, "status": status, "n_fits": n_fits, "n_fits_done": done, "created_at": _unix(created),
             "finished_at": _unix(finished) if finished else None}
        for pk, status, n_fits, done, created, finished in rows
    }  # fmt: skip


def _unix(stored: str) -> float:
    """A datetime as Django stores it in SQLite (UTC, no offset) as a unix time."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp()


def submit(bench: Bench, spec_path: Path, owner: str, wait: bool) -> tuple[int, float]:
    """`runsearch SPEC --owner OWNER` (with --no-wait unless `wait`): the search's id and the subprocess's wall."""
    args = ["runsearch", str(spec_path), "--owner", owner, *([] if wait else ["--no-wait"])]
    elapsed, out = run(manage(*args), bench.env, f"runsearch --owner {owner}", bench.cluster)
    first = next((line for line in out.splitlines() if line.startswith("search ")), "")
    try:
        return int(first.split()[1]), elapsed
    except (IndexError, ValueError):
        raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None


def wait_for(bench: Bench, search_id: int, states: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = searches(bench, [search_id])[search_id]
        if row["status"] in states:
            return row
        time.sleep(1.0)
    raise BenchError(f"search {search_id} not {'/'.join(sorted(states))} within {timeout:.0f} s")


def one_round(fair: bool, candidates: int) -> dict[str, float]:
    with bench_cluster("fair-share", {"FANOUT_FAIR_SHARE": "1" if fair else "0"}) as bench:
        run(manage("shell", "-c", USERS_CODE), bench.env, "users")
        bench.wait_warm_runner()
        a_id, _ = submit(bench, bench.write_spec(big_spec(candidates), "a.json"), "alice", wait=False)
        wait_for(bench, a_id, {"running", "done"}, timeout=600)
        b_id, b_wall = submit(bench, bench.write_spec(B_SPEC, "b.json"), "bob", wait=True)
        a = wait_for(bench, a_id, {"done", "failed", "cancelled"}, timeout=24 * 3600)
        b = searches(bench, [b_id])[b_id]
        if a["status"] != "done" or b["status"] != "done":
            raise BenchError(f"search A {a['status']}, search B {b['status']}")
        return {"b": b["finished_at"] - b["created_at"], "b_wall": b_wall, "a": a["finished_at"] - a["created_at"],
                "a_fits": a["n_fits"], "b_fits": b["n_fits"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20_000, help="A's candidates (× 5 folds; default 20,000)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of each mode, alternating (default 1)")
    parser.add_argument("--fifo", action="store_true", help="first come, first served rounds only (the baseline)")
    args = parser.parse_args(argv)

    def body() -> None:
        print(load_line("at start"))
        modes = [False] if args.fifo else [True, False]
        rows: list[list[str]] = []
        results: dict[bool, list[float]] = {True: [], False: []}
        a_done: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.repeats):
            for fair in modes if i % 2 == 0 else modes[::-1]:
                r = one_round(fair, args.candidates)
                results[fair].append(r["b"])
                a_done[fair].append(r["a"])
                name = "fair share" if fair else "first come, first served"
                rows.append([str(i + 1), name, f"{r['a_fits']:,.0f}", f"{r['b']:.1f}", f"{r['b_wall']:.1f}",
                             f"{r['a']:.1f}"])  # fmt: skip
                print(json.dumps({"round": i + 1, "fair_share": fair, **r}), flush=True)
        print(table(["round", "mode", "A fits", "B done after (s)", "B runsearch wall (s)", "A done after (s)"], rows))
        if results[True]:
            mid = median(results[True])
            print(f"B with fair share: {mid:.1f} s (median of {len(results[True])}); "
                  f"{'met' if mid <= TARGET else 'NOT met'} (target ≤ {TARGET:g} s)")  # fmt: skip
        for fair, name in ((True, "fair share"), (False, "first come, first served")):
            if a_done[fair]:
                print(f"A done after, {name}: {median(a_done[fair]):.1f} s (median of {len(a_done[fair])})")
        print(load_line("at end"))

    return bench_main(body)


if __name__ == "__main__":
    sys.exit(main())

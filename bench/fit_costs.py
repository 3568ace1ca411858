"""Measure the reference grid's fit costs for the scheduling simulation (tests/engine/test_schedule.py).

`.venv/bin/python bench/fit_costs.py [--out tests/engine/data/reference_grid_fit_costs.json]`

Each (max_depth, min_samples_split, fold) of the reference grid (bench/reference_grid.py) is fitted once with
its largest forest, in this process, one core; the CPU seconds per tree (`time.process_time`, which a loaded
machine disturbs less than wall time) are written as JSON. A candidate's fit with n trees then costs n times
its per-tree cost: trees of one forest cost alike, and a forest's fit is its trees."""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.reference_grid import DATA_OPTIONS, GRID  # noqa: E402

OUT = REPO / "tests" / "engine" / "data" / "reference_grid_fit_costs.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold

    X, y = make_classification(**DATA_OPTIONS)
    folds = list(StratifiedKFold(5).split(X, y))
    trees = max(GRID["n_estimators"])
    per_tree: list[dict[str, object]] = []
    for depth, split in itertools.product(GRID["max_depth"], GRID["min_samples_split"]):
        for fold, (train, _) in enumerate(folds):
            forest = RandomForestClassifier(trees, max_depth=depth, min_samples_split=split, random_state=0)
            t0 = time.process_time()
            forest.fit(X[train], y[train])
            seconds = (time.process_time() - t0) / trees
            per_tree.append({"max_depth": depth, "min_samples_split": split, "fold": fold, "seconds": seconds})
            print(f"max_depth={depth} min_samples_split={split} fold={fold}: {1000 * seconds:.2f} ms/tree")
    out = {
        "measured": datetime.date.today().isoformat(),
        "how": f"bench/fit_costs.py: one {trees}-tree fit per cell, CPU seconds per tree, one core",
        "machine": {"cpu_count": os.cpu_count(), "load_average": os.getloadavg()},
        "grid": GRID, "data": DATA_OPTIONS, "per_tree": per_tree,
    }  # fmt: skip
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Two machines against one, measured on this box: `bench/scaleout.py --machines`.

Each "machine" is a qcluster pinned to its own core (`os.sched_setaffinity` before it is started, which is what
`taskset -c N` does; every process it starts — workers, warm runners, loky pools — inherits the mask, so joblib
sees one core) with its own `FANOUT_MACHINE_NAME` and `FANOUT_VAR_DIR`, sharing one PostgreSQL database and one
Redis queue (bench/scaleout.py's set-up). Per round, alternating the order: the reference grid
(bench/reference_grid.py, 90 fits, no refit) through `runsearch SPEC.json` with machine A alone (core 0),
then with machines A and B (cores 0 and 1). Speedup = wall(one) / wall(two), whole `runsearch` subprocesses
(the client, PostgreSQL and Redis are not pinned: both cases share them alike); the limit is 2. Also printed: the
units each machine ran (by the unit's `host`), its fits, and how long the machine that finished first then idled.

The box's own ceiling, measured in the same rounds with no Fanout running (both qclusters stopped): the same 90 fits
in plain scikit-learn (`BARE_CODE`: the same warm-start chains that path reuse runs, the same folds and scorer),
one process pinned to core 0 against two processes started together on cores 0 and 1 with half the chains each
(the split Fanout's units make: alternate chains). Same wall definition (first process started to last one
ended), same cores, and the work checked equal: every (candidate, fold) score of the plain run must equal the one
Fanout stored, or the benchmark fails. Two pinned cores of this box share its caches, memory bus, PostgreSQL, Redis
and the client, so "2.0" is not what two real machines would give; the ceiling is what this box gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, BenchError, load_line, make_env, manage, median, python_code, run, table
from bench.fleet import UNITS_CODE, Fleet, Machine, code, scaleout_backend, shell
from bench.reference_grid import DATA_OPTIONS, GRID, SPEC

# The reference grid's fits in plain scikit-learn: per chain (the grid point without n_estimators) and fold, one
# forest grown by warm start through the chain's n_estimators, scored after each step: what path reuse runs.
BARE_CODE = """
import json, time
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
X, y = make_classification(**DATA_OPTIONS)
folds = list(check_cv(CV, y, classifier=True).split(X, y))
scorer = get_scorer(SCORING)
fits_from = time.time()
scores = []
for fixed, steps in CHAINS:
    for fold, (train, test) in enumerate(folds):
        est = RandomForestClassifier(**PARAMS, **fixed, warm_start=True)
        for index, n in steps:
            est.set_params(n_estimators=n).fit(X[train], y[train])
            scores.append([index, fold, scorer(est, X[test], y[test])])
print(json.dumps({"fits_from": fits_from, "fits_to": time.time(), "scores": scores}))
"""
SCORES_CODE = """
import json
from search.models import Result
rows = Result.objects.filter(search_id=SEARCH_ID).values_list("candidate__params", "fold", "test_scores")
print(json.dumps([[c, f, next(iter(s.values()))] for c, f, s in rows]))
"""


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This process on `cpus` while the block runs (what it starts inherits them), then as before."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class PinnedMachine(Machine):
    cpus: frozenset[int] = frozenset()

    def start(self) -> None:
        with pinned(set(self.cpus)):
            super().start()


@dataclass
class MachinesRun:
    machines: int
    round: int
    wall: float
    search_id: int
    units: list[dict[str, Any]]

    def per_machine(self) -> dict[str, tuple[int, int, float]]:
        """host: (units, fits run, last unit finished)."""
        out: dict[str, tuple[int, int, float]] = {}
        for u in self.units:
            n, fits, last = out.get(u["host"], (0, 0, 0.0))
            out[u["host"]] = (n + 1, fits + (u["fits_run"] or 0), max(last, u["finished"] or 0.0))
        return out

    def span(self) -> float:
        """The cluster's part: first unit claimed to last unit finished (the client's start-up and exit left out)."""
        return max(u["finished"] or 0.0 for u in self.units) - min(u["claimed"] or 1e18 for u in self.units)

    def idle_tail(self) -> float:
        ends = [last for _, _, last in self.per_machine().values()]
        return max(ends) - min(ends) if len(ends) > 1 else 0.0


def chains() -> list[tuple[dict[str, Any], list[tuple[int, int]]]]:
    """The reference grid's candidates as warm-start chains: (the fixed parameters, [(candidate index, n_estimators)])
    in ParameterGrid order, which is the order of a search's candidates."""
    from sklearn.model_selection import ParameterGrid

    out: dict[str, tuple[dict[str, Any], list[tuple[int, int]]]] = {}
    for index, params in enumerate(ParameterGrid(GRID)):
        fixed = {k: v for k, v in params.items() if k != "n_estimators"}
        out.setdefault(json.dumps(fixed, sort_keys=True), (fixed, []))[1].append((index, params["n_estimators"]))
    return list(out.values())


@dataclass
class BareRun:
    processes: int
    round: int
    wall: float
    fits_span: float  # first process's first fit to last process's last fit
    scores: dict[tuple[str, int], float]


def measure_bare(processes: int, round_: int, cpus: list[int], env: dict[str, str]) -> BareRun:
    """The plain scikit-learn fits: all chains in one process on cpus[0], or alternate chains in one process per
    core, started together; wall from the first start to the last exit."""
    from sklearn.model_selection import ParameterGrid

    grid = list(ParameterGrid(GRID))
    all_chains = chains()
    procs = []
    began = time.perf_counter()
    for k in range(processes):
        source = code(BARE_CODE, DATA_OPTIONS=DATA_OPTIONS, CV=SPEC["cv"], SCORING=SPEC["scoring"],
                      PARAMS=SPEC["params"], CHAINS=all_chains[k::processes])  # fmt: skip
        with pinned({cpus[k]}):
            procs.append(subprocess.Popen(python_code(source), cwd=REPO, env=env, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - began
    if any(p.returncode for p in procs):
        raise BenchError(f"a plain scikit-learn run exited {[p.returncode for p in procs]}")
    parts = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    scores = {(json.dumps(grid[c], sort_keys=True), f): v for part in parts for c, f, v in part["scores"]}
    span = max(x["fits_to"] for x in parts) - min(x["fits_from"] for x in parts)
    return BareRun(processes, round_, wall, span, scores)


def check_same_work(bare: BareRun, stored: list[list[Any]]) -> None:
    """Every (candidate, fold) score of the plain run equals the one the search stored, and no fit is missing."""
    fanout = {(json.dumps(p, sort_keys=True), f): v for p, f, v in stored}
    if fanout != bare.scores:
        differ = sorted(k for k in fanout.keys() | bare.scores.keys() if fanout.get(k) != bare.scores.get(k))
        raise BenchError(f"plain scikit-learn and Fanout differ on {len(differ)} scores, e.g. {differ[:3]}")


def measure(fleet: Fleet, spec_path: Path, repeats: int) -> tuple[list[MachinesRun], list[BareRun]]:
    runs: list[MachinesRun] = []
    bare: list[BareRun] = []
    cpus = [m.cpus for m in fleet.machines if isinstance(m, PinnedMachine)]
    cores = [min(c) for c in cpus]
    for i in range(repeats):
        order = (1, 2) if i % 2 == 0 else (2, 1)
        fleet.stop_all()  # the box's ceiling with nothing of Fanout's running
        for n in order:
            bare.append(measure_bare(n, i + 1, cores, fleet.client_env))
            print(f"round {i + 1}/{repeats} plain scikit-learn, {n} process(es): {bare[-1].wall:6.2f} s "
                  f"(fits {bare[-1].fits_span:.2f} s; load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
        for n in order:
            fleet.ensure(n)
            wall, out = run(manage("runsearch", str(spec_path)), fleet.client_env, f"runsearch ({n} machines)")
            line = next((x for x in out.splitlines() if x.startswith("search ")), "")
            try:
                search_id = int(line.split()[1])
            except (IndexError, ValueError):
                raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None
            units = shell(fleet.client_env, UNITS_CODE, "unit query", SEARCH_ID=search_id)["units"]
            check_same_work(bare[-1], shell(fleet.client_env, SCORES_CODE, "score query", SEARCH_ID=search_id))
            runs.append(MachinesRun(n, i + 1, wall, search_id, units))
            split = ", ".join(f"{h}: {u} units / {f} fits" for h, (u, f, _) in sorted(runs[-1].per_machine().items()))
            print(f"round {i + 1}/{repeats} {n} machine(s): {wall:6.2f} s ({split}; load {os.getloadavg()[0]:.2f})")
    return runs, bare


def report(runs: list[MachinesRun], bare: list[BareRun]) -> float:
    rows: list[list[Any]] = []
    spans: list[list[Any]] = []
    for i in sorted({r.round for r in runs}):
        one = next(r for r in runs if r.round == i and r.machines == 1)
        two = next(r for r in runs if r.round == i and r.machines == 2)
        spans.append([i, f"{one.span():.2f}", f"{two.span():.2f}", f"{one.span() / two.span():.3f}",
                      f"{one.wall - one.span():.2f}", f"{two.wall - two.span():.2f}"])  # fmt: skip
        rows.append([i, "one first" if i % 2 == 1 else "two first", f"{one.wall:.2f}", f"{two.wall:.2f}",
                     f"{one.wall / two.wall:.3f}", f"{two.idle_tail():.2f}",
                     " / ".join(f"{u}u {f}f" for _, (u, f, _) in sorted(two.per_machine().items()))])  # fmt: skip
    one_m = median(r.wall for r in runs if r.machines == 1)
    two_m = median(r.wall for r in runs if r.machines == 2)
    rows.append(["median", "", f"{one_m:.2f}", f"{two_m:.2f}", f"{one_m / two_m:.3f}", "", ""])
    print("\nrunsearch wall time (s), reference grid (90 fits), each machine one pinned core")
    print(table(["round", "order", "1 machine", "2 machines", "speedup", "idle tail (2)", "units / fits A / B"], rows))
    one_s = median(r.span() for r in runs if r.machines == 1)
    two_s = median(r.span() for r in runs if r.machines == 2)
    spans.append(["median", f"{one_s:.2f}", f"{two_s:.2f}", f"{one_s / two_s:.3f}", "", ""])
    print("\nthe cluster's part (first unit claimed to last unit finished, s) and the rest of each runsearch")
    print(table(["round", "span 1", "span 2", "span speedup", "rest 1", "rest 2"], spans))
    stuck = [(r.search_id, u["index"], u["status"], u["attempt"]) for r in runs for u in r.units
             if u["status"] != "done" or u["attempt"] != 1 or u["results"] != u["n_fits"]]  # fmt: skip
    print(f"units not done, retried or with missing results: {stuck or 'none'}")
    ceiling_rows: list[list[Any]] = []
    for i in sorted({r.round for r in bare}):
        one_b = next(r for r in bare if r.round == i and r.processes == 1)
        two_b = next(r for r in bare if r.round == i and r.processes == 2)
        ceiling_rows.append([i, f"{one_b.wall:.2f}", f"{two_b.wall:.2f}", f"{one_b.wall / two_b.wall:.3f}",
                             f"{one_b.fits_span:.2f}", f"{two_b.fits_span:.2f}",
                             f"{one_b.fits_span / two_b.fits_span:.3f}"])  # fmt: skip
    one_w, two_w = median(r.wall for r in bare if r.processes == 1), median(r.wall for r in bare if r.processes == 2)
    one_f = median(r.fits_span for r in bare if r.processes == 1)
    two_f = median(r.fits_span for r in bare if r.processes == 2)
    ceiling_rows.append(["median", f"{one_w:.2f}", f"{two_w:.2f}", f"{one_w / two_w:.3f}", f"{one_f:.2f}",
                         f"{two_f:.2f}", f"{one_f / two_f:.3f}"])  # fmt: skip
    print(
        "\nthe box's ceiling: the same fits in plain scikit-learn (scores checked equal to Fanout's), no Fanout "
        "running; wall = first process started to last one ended, fits = first fit to last fit"
    )
    print(table(["round", "1 core", "2 cores", "wall speedup", "fits 1", "fits 2", "fits speedup"], ceiling_rows))
    print(
        f"Fanout's two-machine speedup is {one_m / two_m / (one_w / two_w):.3f} of the box's wall ceiling "
        f"({one_m / two_m:.3f} / {one_w / two_w:.3f}); its cluster span {one_s / two_s / (one_f / two_f):.3f} "
        f"of the fits ceiling ({one_s / two_s:.3f} / {one_f / two_f:.3f})"
    )
    slowest = max((r for r in runs if r.machines == 2), key=lambda r: r.wall)
    print(f"\nthe slowest two-machine run (round {slowest.round}), s from its first claim:")
    print(unit_table(slowest))
    return one_m / two_m


def unit_table(run_: MachinesRun) -> str:
    """Each unit of a run: machine, candidates, fits, and when it was claimed, fitted and finished."""
    units = sorted(run_.units, key=lambda u: u["claimed"] or 0.0)
    t0 = min(u["claimed"] for u in units if u["claimed"])

    def at(value: float | None) -> str:
        return f"{value - t0:.2f}" if value else "n/a"

    rows = [[u["index"], u["host"], "{}-{}".format(*u["candidates"]), u["fits_run"],
             at(u["claimed"]), at(u["first_fit"]), at(u["last_fit"]), at(u["finished"])] for u in units]  # fmt: skip
    return table(["unit", "machine", "candidates", "fits", "claimed", "first fit", "last fit", "finished"], rows)


def machines_body(repeats: int) -> None:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        raise BenchError("--machines needs Linux and at least 2 cores to pin one machine per core")
    cores = sorted(os.sched_getaffinity(0))
    print(load_line("at start"), flush=True)
    with tempfile.TemporaryDirectory(prefix="fanout-machines-") as tmp, scaleout_backend() as (db_url, redis_url):
        root = Path(tmp)
        base = make_env(root / "A", "machines")
        base.update(DATABASE_URL=db_url, REDIS_URL=redis_url)
        machines: list[Machine] = []
        for name, cpu in zip(("A", "B"), cores, strict=False):
            (root / name).mkdir()
            env = {**base, "FANOUT_VAR_DIR": str(root / name), "FANOUT_MACHINE_NAME": f"machine-{name}"}
            machines.append(PinnedMachine(name, root / name, env, cpus=frozenset({cpu})))
        fleet = Fleet(machines)
        run(manage("migrate", "--no-input"), fleet.client_env, "migrate")
        spec_path = root / "reference-grid.json"
        spec_path.write_text(json.dumps(SPEC, indent=2), encoding="utf-8")
        try:
            fleet.live()  # reads the settings the clusters see
            cfg = fleet.config
            if "postgresql" not in cfg["engine"] or not cfg["broker_redis"]:
                raise BenchError(f"not the scale-out configuration: {cfg}")
            print(f"machines: A on core {cores[0]}, B on core {cores[1]}; {cfg['engine']}, redis broker", flush=True)
            started = time.monotonic()
            runs, bare = measure(fleet, spec_path, repeats)
        finally:
            fleet.stop_all()
    speedup = report(runs, bare)
    print(f"\nspeedup two machines / one: {speedup:.3f} (limit 2.0), measured in {time.monotonic() - started:.0f} s")
    print(load_line("at end"))

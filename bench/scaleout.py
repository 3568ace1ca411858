"""Scale-out on PostgreSQL + Redis: one cluster against two, per-unit dispatch overhead, result-write rate,
and a projection to fleets of machines built from those measured parts.

Run: `.venv/bin/python bench/scaleout.py [--repeats N] [--write-rows N]` (needs PostgreSQL on 127.0.0.1:5432
with trust auth for user `postgres`, and Redis on 127.0.0.1:6379).

Set-up: a fresh database `fanout_bench_<pid>` (createdb, dropped at the end), Redis db 14 (flushed at start and
end), `DATABASE_URL` + `REDIS_URL` set so the project runs its scale-out configuration (checked), random
`DJANGO_SECRET_KEY`, one `FANOUT_CLUSTER_NAME` shared by both qclusters (they consume the same queue), and a temp
`FANOUT_VAR_DIR` per qcluster (a "machine" each, with its own data set cache). `migrate` once.

1. The reference grid (`bench/reference_grid.py`, 90 fits) through `runsearch SPEC.json`, timed end to end, in
   three cases per round, alternating the order between rounds: one qcluster (n_jobs=-1); two qclusters with the
   identical spec (n_jobs=-1: 2 x 2 processes on 2 cores, oversubscribed); two qclusters with n_jobs=1 (2
   processes in all). Each search is submitted once `live_clusters()` (django-q2's `Stat.get_all()`, what
   `search_create` reads to size the units) shows the expected number of clusters and every warm runner is idle
   (untimed). Per search: units, and which cluster ran each (the unit's `worker_pid` mapped to a qcluster by
   `os.getpgid(worker_pid) == qcluster pid`), with `fits_run` and the stored results per unit.
2. Per-unit dispatch overhead from the stored timestamps: enqueued -> claimed (raw, and the dispatch gap
   claimed - max(enqueued, the same worker's previous unit finished)), claimed -> first fit, last fit -> unit
   finished. Overhead per unit = dispatch gap + claim to first fit + last fit to finished.
3. Result-write rate through the project's own write path, `search.services.units.results_write` (idempotent bulk
   insert + progress refresh), of synthetic fits into a fresh 10,000-cell search (Ridge, 2,000 alphas x cv=5,
   created with `enqueue=False`): one writer with batches of 1, 10, 100; four concurrent writer processes with
   batches of 10 (one search, a quarter of the cells each, started together behind a file barrier).
4. A projection from 1-3 (not a measurement of a fleet): wall(M) = N*T/(M_eff*C_eff) + k*o, with T the measured
   per-fit busy time, o the measured overhead per unit, k the units per machine and M_eff / C_eff the machines and
   processes a search of N fits can use given how the project sizes units; database load M_eff*C_eff/T rows/s.

Benchmarks report, tests assert: the script exits non-zero only when a subprocess fails (or the backend set-up
is not the scale-out one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/scaleout.py` finds `bench`

from bench.common import (
    REPO,
    BenchError,
    FanoutRun,
    bench_main,
    descendants,
    last_json_line,
    load_line,
    make_env,
    manage,
    median,
    process_table,
    run,
    table,
)
from bench.fleet import REDIS_DB, UNITS_CODE, Fleet, Machine, code, scaleout_backend, shell
from bench.reference_grid import SPEC

CV = int(SPEC["cv"])
WRITE_CANDIDATES = 2000  # Ridge alphas: 2,000 x cv=5 = 10,000 cells
WRITE_CV = 5
CONCURRENT_WRITERS = 4
FLUSH_SECONDS = 0.5  # search.services.units.FLUSH_SECONDS: a unit's supervisor writes what arrived every 0.5 s
PROJECTION_N = (90, 10_000, 1_000_000)
PROJECTION_M = (1, 10, 100)
PROJECTION_C = (2, 32)


@dataclass(frozen=True)
class Case:
    key: str
    clusters: int
    n_jobs: int
    label: str


ONE = Case("one", 1, -1, "1 cluster, n_jobs=-1")
TWO = Case("two", 2, -1, "2 clusters, n_jobs=-1")
TWO_NJ1 = Case("two-nj1", 2, 1, "2 clusters, n_jobs=1")
CASES = (ONE, TWO, TWO_NJ1)


# ---------------------------------------------------------------------------------------------
# Code run inside the project (`manage.py shell -c`); upper-case names are replaced before running
# ---------------------------------------------------------------------------------------------

TASKS_CODE = """
import json
from collections import Counter
from django_q.models import Task
out = {}
for group in GROUPS:
    tasks = list(Task.objects.filter(group=group))
    out[group] = {"tasks": len(tasks), "results": dict(Counter(f"{t.result}" if t.success else "FAILED"
                                                              for t in tasks))}
print(json.dumps(out))
"""

CREATE_CODE = """
import json
spec = {"name": "write-rate", "estimator": "Ridge", "param_grid": {"alpha": [0.001 * i for i in range(1, N_CAND + 1)]},
        "dataset": "diabetes", "cv": N_SPLITS}
out = []
for _ in range(COUNT):
    s = search_create(plan=plan_search(spec), enqueue=False)
    out.append({"id": s.pk, "n_fits": s.n_fits, "units": s.units.count()})
print(json.dumps(out))
"""

WRITER_CODE = """
import json, os, socket, statistics, time
from pathlib import Path
from search.models import Search, WorkUnit
P = json.loads(PARAMS)
n_splits = Search.objects.get(pk=P["search"]).n_splits
batches = []
for u in WorkUnit.objects.filter(search_id=P["search"]).order_by("index"):
    lo, hi = max(u.candidate_start, P["start"]), min(u.candidate_stop, P["stop"])
    cells = [(c, f) for c in range(lo, hi) for f in range(n_splits)]
    batches += [(u, cells[i:i + P["batch"]]) for i in range(0, len(cells), P["batch"])]
host, pid = socket.gethostname(), os.getpid()
def fit(c, f):
    now = time.time()
    return {"candidate": c, "fold": f, "test_scores": {"score": 0.5}, "train_scores": None, "fit_time": 0.01,
            "score_time": 0.001, "started_at": now - 0.011, "finished_at": now, "host": host, "pid": pid,
            "n_test_samples": 89, "error": ""}
def refresh_ms():
    if P["writers"] != 1:  # only a lone writer probes the progress refresh (a count over the search's rows)
        return None
    t = time.perf_counter()
    for _ in range(20):
        search_refresh_progress(search_id=P["search"])
    return 1000 * (time.perf_counter() - t) / 20
refresh_empty = refresh_ms()
barrier = Path(P["barrier"])
(barrier / str(pid)).touch()
while len(list(barrier.iterdir())) < P["writers"]:
    time.sleep(0.001)
start, t0 = time.time(), time.perf_counter()
marks, rows = [], 0
for unit, chunk in batches:
    b = time.perf_counter()
    results_write(unit=unit, fits=[fit(c, f) for c, f in chunk])
    rows += len(chunk)
    marks.append((time.perf_counter(), rows, time.perf_counter() - b))
end = time.time()
tenth = max(1, rows // 10)
first = next(m for m in marks if m[1] >= tenth)
before_last = [m for m in marks if m[1] <= rows - tenth]
last_from = before_last[-1] if before_last else (t0, 0, 0.0)
print(json.dumps({"rows": rows, "batches": len(batches), "start": start, "end": end, "seconds": marks[-1][0] - t0,
                  "first_rate": first[1] / (first[0] - t0),
                  "last_rate": (rows - last_from[1]) / (marks[-1][0] - last_from[0]),
                  "batch_ms": 1000 * statistics.median(m[2] for m in marks),
                  "refresh_ms": [refresh_empty, refresh_ms()]}))
"""


# ---------------------------------------------------------------------------------------------
# 1 + 2: one cluster against two
# ---------------------------------------------------------------------------------------------


@dataclass
class SearchRun:
    case: Case
    round: int
    run: FanoutRun
    units: list[dict[str, Any]] = field(default_factory=list)  # UNITS_CODE rows + "cluster"
    export: dict[str, Any] = field(default_factory=dict)

    @property
    def fit_time(self) -> float:
        """Mean busy seconds per fit (fit + score), from the export's cv_results."""
        cv = self.export["cv_results"]
        search = self.export["search"]
        busy = sum((f or 0.0) + (s or 0.0) for f, s in zip(cv["mean_fit_time"], cv["mean_score_time"], strict=True))
        return busy * int(search["n_splits"]) / int(search["n_fits"])

    def idle_tail(self) -> dict[str, float]:
        """cluster: seconds from its last unit finished to the search's last unit finished (it had nothing to do)."""
        done = [u for u in self.units if u["finished"] is not None]
        end = max((u["finished"] for u in done), default=math.nan)
        return {c: end - max(u["finished"] for u in done if u["cluster"] == c) for c in {u["cluster"] for u in done}}

    def per_cluster(self) -> dict[str, tuple[int, int]]:
        """cluster: (units, fits_run)."""
        out: dict[str, tuple[int, int]] = {}
        for u in self.units:
            units, fits = out.get(u["cluster"], (0, 0))
            out[u["cluster"]] = (units + 1, fits + (u["fits_run"] or 0))
        return out


@dataclass(frozen=True)
class UnitOverhead:
    queue_claim: float  # enqueued -> claimed, raw (includes waiting behind other units)
    gap: float  # claimed - max(enqueued, this worker's previous unit of the search finished)
    to_first_fit: float  # claimed -> first fit started
    after_last_fit: float  # last fit finished -> unit finished

    @property
    def total(self) -> float:
        return self.gap + self.to_first_fit + self.after_last_fit


def overheads(units: list[dict[str, Any]]) -> list[UnitOverhead]:
    out: list[UnitOverhead] = []
    previous: dict[Any, float] = {}  # worker pid: when its last unit finished
    for u in sorted(units, key=lambda u: u["claimed"] or math.inf):
        times = [u[k] for k in ("enqueued", "claimed", "first_fit", "last_fit", "finished")]
        if any(t is None for t in times):
            continue
        enqueued, claimed, first, last, finished = times
        ready = max(enqueued, previous.get(u["worker_pid"], enqueued))
        out.append(UnitOverhead(claimed - enqueued, claimed - ready, first - claimed, finished - last))
        previous[u["worker_pid"]] = finished
    return out


def outside_units(r: SearchRun) -> float:
    """runsearch wall time minus the span from the first unit enqueued to the last unit finished: client start-up,
    validation, rows, finalize and the client's polling (a per-search constant, not per unit)."""
    enq = [u["enqueued"] for u in r.units if u["enqueued"] is not None]
    fin = [u["finished"] for u in r.units if u["finished"] is not None]
    if not enq or not fin:
        return math.nan
    return r.run.wall - (max(fin) - min(enq))


def measure_clusters(fleet: Fleet, repeats: int) -> list[SearchRun]:
    env = fleet.client_env
    var = fleet.machines[0].var_dir
    specs = {-1: var / "reference-grid.json", 1: var / "reference-grid-nj1.json"}
    specs[-1].write_text(json.dumps(SPEC, indent=2), encoding="utf-8")
    specs[1].write_text(json.dumps({**SPEC, "n_jobs": 1}, indent=2), encoding="utf-8")
    runs: list[SearchRun] = []
    for i in range(repeats):
        order = CASES if i % 2 == 0 else tuple(reversed(CASES))  # one cluster start and stop per round
        for case in order:
            fleet.ensure(case.clusters)
            first = fleet.machines[0].proc
            started = time.time()
            wall, out = run(manage("runsearch", str(specs[case.n_jobs])), env, f"runsearch ({case.label})", first)
            line = next((x for x in out.splitlines() if x.startswith("search ")), "")
            try:
                search_id = int(line.split()[1])
            except (IndexError, ValueError):
                raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None
            r = SearchRun(case, i + 1, FanoutRun(wall=wall, search_id=search_id, started=started, ended=started + wall))
            data = shell(env, UNITS_CODE, "unit query", SEARCH_ID=search_id)  # now, while the workers are alive
            r.units = [{**u, "cluster": fleet.owner(u["worker_pid"])} for u in data["units"]]
            runs.append(r)
            split = ", ".join(f"{c}: {n} units / {f} fits" for c, (n, f) in sorted(r.per_cluster().items()))
            load = os.getloadavg()[0]
            print(f"round {i + 1}/{repeats} {case.label:<22} search {search_id}: {wall:6.2f} s ({split}; "
                  f"load {load:.2f})", flush=True)  # fmt: skip
    return runs


def report_clusters(runs: list[SearchRun]) -> dict[str, float]:
    """Tables of part 1 and 2; returns the medians the projection needs."""
    by_round: dict[int, dict[str, SearchRun]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.case.key] = r
    rows: list[list[Any]] = []
    for i, cases in sorted(by_round.items()):
        one, two, nj1 = cases["one"].run.wall, cases["two"].run.wall, cases["two-nj1"].run.wall
        order = "one first" if i % 2 == 1 else "two first"
        rows.append([i, order, f"{one:.2f}", f"{two:.2f}", f"{nj1:.2f}", f"{two / one:.3f}", f"{nj1 / one:.3f}"])
    med = {c.key: median(r.run.wall for r in runs if r.case == c) for c in CASES}
    rows.append(["median", "", f"{med['one']:.2f}", f"{med['two']:.2f}", f"{med['two-nj1']:.2f}",
                 f"{med['two'] / med['one']:.3f}", f"{med['two-nj1'] / med['one']:.3f}"])  # fmt: skip
    print("\n1. runsearch wall time (s), reference grid (90 fits), whole subprocess")
    print(table(["round", "order", ONE.label, TWO.label, TWO_NJ1.label, "two/one", "two nj1/one"], rows))

    rows = []
    for r in runs:
        split = r.per_cluster()
        procs = ",".join(str(u["processes_used"]) for u in r.units)
        fits = "/".join(str(u["fits_run"]) for u in r.units)
        statuses = Counter(u["status"] for u in r.units)
        export_units = r.export["search"]["units"]
        tail = r.idle_tail()
        rows.append([r.case.label, r.round, r.run.search_id, len(r.units), fits,
                     *(f"{split.get(c, (0, 0))[0]} / {split.get(c, (0, 0))[1]}" for c in ("A", "B")),
                     " / ".join(f"{tail[c]:.1f}" for c in ("A", "B") if c in tail),
                     max(u["attempt"] for u in export_units), procs,
                     " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
                     f"{r.export['search']['n_fits_done']}/{r.export['search']['n_fits']}",
                     f"{1000 * r.fit_time:.0f}"])  # fmt: skip
    print("\nunits of each search: fits_run per unit, and per cluster (units / fits) from worker_pid -> process group")
    print("idle tail: seconds from a cluster's last unit finished to the search's last unit finished")
    print(table(["case", "round", "search", "units", "fits per unit", "cluster A", "cluster B", "idle tail A / B",
                 "max attempt", "processes per unit", "unit status", "fits stored", "ms/fit"], rows))  # fmt: skip

    rows = []
    all_units: list[UnitOverhead] = []
    for c in CASES:
        ovs = [o for r in runs if r.case == c for o in overheads(r.units)]
        all_units += ovs
        rows.append(
            [c.label, len(ovs), *overhead_cells(ovs), f"{median(outside_units(r) for r in runs if r.case == c):.2f}"]
        )
    rows.append(["all units", len(all_units), *overhead_cells(all_units), ""])
    print(
        "\n2. per-unit dispatch overhead (s, medians over units; sum = dispatch gap + claim->first fit + last fit->end)"
    )
    print(table(["case", "units", "enqueued->claimed", "dispatch gap", "claim->first fit", "last fit->done",
                 "overhead/unit", "outside units/search"], rows))  # fmt: skip
    return {
        "fit_time": median(r.fit_time for r in runs if r.case == ONE),
        "overhead": median(o.total for o in all_units),
        "overhead_two": median(o.total for r in runs if r.case != ONE for o in overheads(r.units)),
        "outside": median(outside_units(r) for r in runs),
        "two_over_one": med["two"] / med["one"],
        "two_nj1_over_one": med["two-nj1"] / med["one"],
    }


def overhead_cells(ovs: list[UnitOverhead]) -> list[str]:
    if not ovs:
        return ["", "", "", "", ""]
    return [
        f"{median(getattr(o, k) for o in ovs):.3f}" for k in ("queue_claim", "gap", "to_first_fit", "after_last_fit")
    ] + [f"{median(o.total for o in ovs):.3f}"]


def warm_runner_cpu(env: dict[str, str], repeats: int = 3, timeout: float = 60) -> list[float]:
    """CPU seconds one warm runner (`python -m search.engine.runner --warm`) takes to get ready: interpreter,
    imports, loky pool. A worker starts one as its spare when it claims a unit while units are still queued, and
    again after a unit, so on a machine running several units of a search this CPU is taken from the fits: a
    per-unit cost the unit timestamps do not show."""
    need = 1 + (os.cpu_count() or 1)
    out: list[float] = []
    for _ in range(repeats):
        proc = subprocess.Popen(
            [sys.executable, "-m", "search.engine.runner", "--warm"], cwd=REPO, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline, last, cpu = time.monotonic() + timeout, -1.0, 0.0
            while True:
                time.sleep(0.5)
                if proc.poll() is not None:
                    raise BenchError(f"warm runner exited {proc.returncode} before it was ready")
                procs = process_table()
                group = descendants([proc.pid], procs)
                cpu = sum(procs[p].cpu for p in group)
                if len(group) >= need and abs(cpu - last) < 0.02:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"warm runner not ready and idle within {timeout:.0f} s")
                last = cpu
        finally:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.append(cpu)
    return out


# ---------------------------------------------------------------------------------------------
# 3: result-write rate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteCase:
    writers: int
    batch: int


WRITE_CASES = (WriteCase(1, 1), WriteCase(1, 10), WriteCase(1, 100), WriteCase(CONCURRENT_WRITERS, 10))


@dataclass
class WriteResult:
    case: WriteCase
    writers: list[dict[str, Any]]

    @property
    def rows(self) -> int:
        return sum(int(w["rows"]) for w in self.writers)

    @property
    def seconds(self) -> float:
        return max(w["end"] for w in self.writers) - min(w["start"] for w in self.writers)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def measure_writes(env: dict[str, str], var_dir: Path, rows: int) -> list[WriteResult]:
    candidates = max(CONCURRENT_WRITERS, min(WRITE_CANDIDATES, rows // WRITE_CV))
    created = shell(env, CREATE_CODE, "create write-rate searches", N_CAND=WRITE_CANDIDATES, N_SPLITS=WRITE_CV,
                    COUNT=len(WRITE_CASES))  # fmt: skip
    results: list[WriteResult] = []
    for case, search in zip(WRITE_CASES, created, strict=True):
        barrier = var_dir / f"barrier-{search['id']}"
        barrier.mkdir()
        share = math.ceil(candidates / case.writers)
        params = [
            json.dumps({"search": search["id"], "batch": case.batch, "start": w * share,
                        "stop": min(candidates, (w + 1) * share), "barrier": str(barrier), "writers": case.writers})
            for w in range(case.writers)
        ]  # fmt: skip
        with ThreadPoolExecutor(max_workers=case.writers) as pool:
            futures = [
                pool.submit(run, manage("shell", "-c", code(WRITER_CODE, PARAMS=p)), env, f"writer {w}")
                for w, p in enumerate(params)
            ]
            outs = [f.result()[1] for f in futures]
        res = WriteResult(case, [last_json_line(o, "writer") for o in outs])
        results.append(res)
        print(f"write rate, {case.writers} writer(s), batch {case.batch}: {res.rows} rows in {res.seconds:.2f} s = "
              f"{res.rate:.0f} rows/s", flush=True)  # fmt: skip
    return results


def report_writes(results: list[WriteResult]) -> None:
    rows = []
    for r in results:
        first = sum(w["first_rate"] for w in r.writers)
        last = sum(w["last_rate"] for w in r.writers)
        refresh = r.writers[0]["refresh_ms"]
        probe = "" if refresh[0] is None else f"{refresh[0]:.2f} / {refresh[1]:.2f}"
        rows.append([r.case.writers, r.case.batch, r.rows, f"{r.seconds:.2f}", f"{r.rate:.0f}", f"{first:.0f}",
                     f"{last:.0f}", f"{median(w['batch_ms'] for w in r.writers):.2f}", probe])  # fmt: skip
    print(
        "\n3. result-write rate through search.services.units.results_write (synthetic fits, fresh 10,000-cell search)"
    )
    print("first/last 10%: rows/s over each writer's first and last tenth of its rows, summed over writers;")
    print("refresh: ms per search_refresh_progress (part of every write) with 0 rows / with all rows stored")
    print(table(["writers", "batch", "rows", "seconds", "rows/s", "first 10%", "last 10%", "ms/batch (median)",
                 "refresh ms 0 / all"], rows))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 4: projection
# ---------------------------------------------------------------------------------------------


def unit_plan(n_fits: int, n_splits: int, machines: int, config: dict[str, Any]) -> tuple[int, int]:
    """(units, candidates per unit): `search.services.searches.unit_ranges` for `machines` live clusters."""
    n_candidates = max(1, n_fits // n_splits)
    per_unit = max(1, int(config["max_fits_per_unit"]) // n_splits)
    n_units = math.ceil(n_candidates / per_unit)
    if machines > 1:
        by_fits = max(1, n_candidates * n_splits // int(config["min_fits_per_unit"]))
        n_units = max(n_units, min(machines * int(config["units_per_machine"]), by_fits, n_candidates))
    size = math.ceil(n_candidates / n_units)
    return math.ceil(n_candidates / size), size


@dataclass(frozen=True)
class Projection:
    cores: int
    n_fits: int
    machines: int
    units: int
    busy_machines: int  # machines that get at least one unit
    units_per_machine: int  # the most units one machine runs, one after another
    cores_used: int  # processes per unit: C, or fewer when a unit has fewer fits
    wall: float
    need: float  # results per second the database must absorb while every used core fits

    @property
    def flush_batch(self) -> float:
        return self.need / self.busy_machines * FLUSH_SECONDS


def project(n_fits: int, machines: int, cores: int, t: float, o: float, config: dict[str, Any]) -> Projection:
    units, size = unit_plan(n_fits, CV, machines, config)
    busy = min(machines, units)
    k = math.ceil(units / machines)
    c_eff = min(cores, size * CV)
    wall = n_fits * t / (busy * c_eff) + k * o
    return Projection(cores, n_fits, machines, units, busy, k, c_eff, wall, busy * c_eff / t)


def report_projection(parts: dict[str, float], writes: list[WriteResult], config: dict[str, Any]) -> list[str]:
    t, o, s, cpu = parts["fit_time"], parts["overhead"], parts["outside"], parts["runner_cpu"]
    rate = {(r.case.writers, r.case.batch): r.rate for r in writes}
    limits = [("1 writer b10", rate[(1, 10)]), ("1 writer b100", rate[(1, 100)]),
              (f"{CONCURRENT_WRITERS} writers b10", rate[(CONCURRENT_WRITERS, 10)])]  # fmt: skip
    rows: list[list[Any]] = []
    speedups: list[str] = []
    for c in PROJECTION_C:
        for n in PROJECTION_N:
            one = project(n, 1, c, t, o, config)
            for m in PROJECTION_M:
                p = project(n, m, c, t, o, config)
                speed, speed_s = one.wall / p.wall, (one.wall + s) / (p.wall + s)
                speed_r = project(n, 1, c, t, o + cpu / c, config).wall / project(n, m, c, t, o + cpu / c, config).wall
                verdicts = ["ok" if p.need <= lim else f"LIMIT x{p.need / lim:.1f}" for _, lim in limits]
                rows.append([c, f"{n:,}", m, p.units, p.busy_machines, p.units_per_machine, p.cores_used,
                             f"{p.wall:,.1f}", f"{speed:.1f}", f"{speed_r:.1f}", f"{speed_s:.1f}", f"{p.need:,.0f}",
                             f"{p.flush_batch:,.0f}", *verdicts])  # fmt: skip
                if m in (10, 100):
                    speedups.append(
                        f"C={c} N={n:,} M={m}: {speed:.1f}x (with the spare runner's CPU per unit "
                        f"{speed_r:.1f}x, with the per-search constant {speed_s:.1f}x)"
                    )
    print("\n4. PROJECTION from the measured parts above (not a measurement of 10 or 100 machines)")
    print(
        f"T = {1000 * t:.0f} ms per fit (reference grid, 1 cluster, fit + score), o = {o:.3f} s per unit (median over "
        f"all units), per-search constant outside units {s:.2f} s (client start-up, rows, finalize, polling)"
    )
    print("wall(M) = N*T/(M_eff*C_eff) + k*o;  M_eff = machines given a unit, k = units on the busiest machine, C_eff")
    print(
        "= min(C, fits per unit); units as search.services.searches.unit_ranges makes them (units_per_machine "
        f"{config['units_per_machine']}, min {config['min_fits_per_unit']} fits per unit, max "
        f"{config['max_fits_per_unit']}); DB rows/s needed = M_eff*C_eff/T; flush batch = rows per machine per "
        f"{FLUSH_SECONDS} s flush"
    )
    print(f"speedup = wall(1)/wall(M); +runner CPU: o + R/C per unit, R = {cpu:.2f} CPU s to start a spare runner; "
          f"+const: both walls plus the per-search constant")  # fmt: skip
    print(table(["C", "N fits", "M", "units", "M_eff", "k", "C_eff", "wall (s)", "speedup", "+runner CPU", "+const",
                 "rows/s needed",
                 "flush batch", *(name for name, _ in limits)], rows))  # fmt: skip
    print("speedup relative to one machine of the same C:")
    for line in speedups:
        print(f"  {line}")
    return speedups


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def scan_logs(fleet: Fleet) -> list[str]:
    """ERROR / Traceback / WARNING lines of every qcluster log (one log per start)."""
    found: list[str] = []
    for m in fleet.machines:
        for log in m.logs():
            for line in log.read_text(errors="replace").splitlines():
                if any(word in line for word in ("ERROR", "Traceback", "WARNING", "CRITICAL")):
                    found.append(f"{m.name}/{log.name}: {line.strip()[:200]}")
    return found


def body(repeats: int, write_rows: int) -> None:
    print(load_line("at start"), flush=True)
    with tempfile.TemporaryDirectory(prefix="fanout-scaleout-") as tmp, scaleout_backend() as (db_url, redis_url):
        root = Path(tmp)
        base = make_env(root / "A", "scaleout")
        base.update(DATABASE_URL=db_url, REDIS_URL=redis_url)
        machines = []
        for name in ("A", "B"):
            (root / name).mkdir()
            machines.append(Machine(name, root / name, {**base, "FANOUT_VAR_DIR": str(root / name)}))
        fleet = Fleet(machines)
        run(manage("migrate", "--no-input"), fleet.client_env, "migrate")
        try:
            fleet.live()
            cfg = fleet.config
            if "postgresql" not in cfg["engine"] or not cfg["broker_redis"] or "Redis" not in cfg["cache"]:
                raise BenchError(f"not the scale-out configuration: {cfg}")
            database = db_url.rsplit("/", 1)[1]
            print(f"backend: {cfg['engine']}, django-q2 broker redis, cache {cfg['cache']}, cluster name "
                  f"{cfg['cluster_name']}, database {database}, redis db {REDIS_DB}", flush=True)  # fmt: skip
            runs = measure_clusters(fleet, repeats)
        finally:
            fleet.stop_all()
        for r in runs:
            r.export = json.loads(
                run(manage("exportsearch", str(r.run.search_id), "--format", "json"), fleet.client_env, "export")[1]
            )
        groups = [f"search-{r.run.search_id}" for r in runs]
        tasks = shell(fleet.client_env, TASKS_CODE, "task query", GROUPS=groups)
        log_lines = scan_logs(fleet)
        runner_cpu = warm_runner_cpu(fleet.client_env)
        writes = measure_writes(fleet.client_env, root, write_rows)
    print(load_line("after the measurements"), flush=True)
    parts = report_clusters(runs)
    parts["runner_cpu"] = median(runner_cpu)
    print(
        f"warm runner start-up (spare runner, started per unit while units are queued): "
        f"{', '.join(f'{c:.2f}' for c in runner_cpu)} CPU s (= {median(runner_cpu) / 2:.2f} s of a 2-core machine)"
    )
    task_counts = Counter(v["tasks"] for v in tasks.values())
    results: Counter[str] = Counter()
    for v in tasks.values():
        results.update(v["results"])
    print(
        f"\ndjango-q2 tasks per search (unit messages delivered): {dict(task_counts)} searches; results {dict(results)}"
    )
    stuck = [(r.run.search_id, u["index"], u["status"], u["attempt"]) for r in runs for u in r.units
             if u["status"] != "done" or u["attempt"] != 1 or u["results"] != u["n_fits"]]  # fmt: skip
    print(f"units not done, retried or with missing results: {stuck or 'none'}")
    warnings = Counter(w for r in runs for w in r.export["search"]["warnings"])
    for w, n in warnings.items():
        print(f"search warning ({n} searches): {w}")
    print(f"qcluster log lines with ERROR/WARNING/Traceback: {len(log_lines)}")
    for line in log_lines[:10]:
        print(f"  {line}")
    report_writes(writes)
    report_projection(parts, writes, fleet.config)
    print(f"\nratio two/one: {parts['two_over_one']:.3f} (n_jobs=-1), {parts['two_nj1_over_one']:.3f} (n_jobs=1); "
          "both have the same 2 cores in all, so about 1 is expected")  # fmt: skip
    print(load_line("at end"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scale-out on PostgreSQL + Redis: 1 vs 2 clusters, overhead, writes.")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of the three cases (default 3)")
    parser.add_argument("--write-rows", type=int, default=10_000, help="rows per write-rate case (default 10,000)")
    parser.add_argument(
        "--machines", action="store_true",
        help="only two machines against one, each qcluster pinned to its own core (bench/machines.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not 40 <= args.write_rows <= WRITE_CANDIDATES * WRITE_CV:
        parser.error(f"--write-rows must be between 40 and {WRITE_CANDIDATES * WRITE_CV}")
    if args.machines:
        from bench.machines import machines_body  # it imports this module

        return bench_main(lambda: machines_body(args.repeats))
    return bench_main(lambda: body(args.repeats, args.write_rows))


if __name__ == "__main__":
    sys.exit(main())

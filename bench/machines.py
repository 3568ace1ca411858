"""Two machines against one, measured on this box: `bench/scaleout.py --machines`.

Each "machine" is a qcluster pinned to its own core (`os.sched_setaffinity` before it is started, which is what
`taskset -c N` does; every process it starts — workers, warm runners, loky pools — inherits the mask, so joblib
sees one core) with its own `FANOUT_MACHINE_NAME` and `FANOUT_VAR_DIR`, sharing one PostgreSQL database and one
Redis queue (bench/scaleout.py's set-up). Per round, alternating the order: the reference grid
(bench/reference_grid.py, 90 fits, no refit) through `runsearch SPEC.json` with machine A alone (core 0),
then with machines A and B (cores 0 and 1). Speedup = wall(one) / wall(two), whole `runsearch` subprocesses
(the client, PostgreSQL and Redis are not pinned: both cases share them alike); the limit is 2. Also printed: the
units each machine ran (by the unit's `host`), its fits, and how long the machine that finished first then idled.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchError, load_line, make_env, manage, median, run, table
from bench.fleet import UNITS_CODE, Fleet, Machine, scaleout_backend, shell
from bench.reference_grid import SPEC


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


def measure(fleet: Fleet, spec_path: Path, repeats: int) -> list[MachinesRun]:
    runs: list[MachinesRun] = []
    for i in range(repeats):
        for n in (1, 2) if i % 2 == 0 else (2, 1):
            fleet.ensure(n)
            wall, out = run(manage("runsearch", str(spec_path)), fleet.client_env, f"runsearch ({n} machines)")
            line = next((x for x in out.splitlines() if x.startswith("search ")), "")
            try:
                search_id = int(line.split()[1])
            except (IndexError, ValueError):
                raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None
            units = shell(fleet.client_env, UNITS_CODE, "unit query", SEARCH_ID=search_id)["units"]
            runs.append(MachinesRun(n, i + 1, wall, search_id, units))
            split = ", ".join(f"{h}: {u} units / {f} fits" for h, (u, f, _) in sorted(runs[-1].per_machine().items()))
            print(f"round {i + 1}/{repeats} {n} machine(s): {wall:6.2f} s ({split}; load {os.getloadavg()[0]:.2f})")
    return runs


def report(runs: list[MachinesRun]) -> float:
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
            runs = measure(fleet, spec_path, repeats)
        finally:
            fleet.stop_all()
    speedup = report(runs)
    print(f"\nspeedup two machines / one: {speedup:.3f} (limit 2.0), measured in {time.monotonic() - started:.0f} s")
    print(load_line("at end"))

"""The scale-out set-up the benchmarks share (bench/scaleout.py, bench/machines.py): a fresh PostgreSQL database
and Redis db, qclusters standing in for machines, and code run inside the project with `manage.py shell -c`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BenchError, FanoutProcesses, manage, run, wait_idle_runner
from project.cluster import start_qcluster, stop_qcluster

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", "5432", "postgres"
REDIS_DB = 14
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"

CONFIG_CODE = """
import json
from django.conf import settings
from search.selectors.cluster import live_clusters
from search.services.finalize import search_refresh_progress
from search.services.searches import plan_search, search_create
from search.services.units import results_write
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"], "broker_redis": "redis" in settings.Q_CLUSTER,
    "cache": settings.CACHES["default"]["BACKEND"], "cluster_name": settings.Q_CLUSTER["name"],
    "units_per_machine": settings.FANOUT_UNITS_PER_MACHINE, "min_fits_per_unit": settings.FANOUT_MIN_FITS_PER_UNIT,
    "max_fits_per_unit": settings.FANOUT_MAX_FITS_PER_UNIT, "clusters": live_clusters(),
}))
"""

UNITS_CODE = """
import json
from django.db.models import Count, Max, Min
from search.models import Result, Search, WorkUnit
ts = lambda d: d.timestamp() if d else None
s = Search.objects.get(pk=SEARCH_ID)
units = []
for u in WorkUnit.objects.filter(search=s).order_by("index"):
    agg = Result.objects.filter(unit=u).aggregate(first=Min("started_at"), last=Max("finished_at"), n=Count("pk"))
    units.append({"index": u.index, "status": u.status, "attempt": u.attempt, "host": u.host,
                  "worker_pid": u.worker_pid, "runner_pid": u.runner_pid, "fits_run": u.fits_run,
                  "results": agg["n"], "n_fits": u.n_fits, "candidates": [u.candidate_start, u.candidate_stop],
                  "processes_used": u.processes_used, "error": u.error, "enqueued": ts(u.enqueued_at),
                  "claimed": ts(u.started_at), "first_fit": ts(agg["first"]), "last_fit": ts(agg["last"]),
                  "finished": ts(u.finished_at)})
print(json.dumps({"status": s.status, "n_fits_done": s.n_fits_done, "units": units}))
"""


def code(template: str, **values: Any) -> str:
    for name, value in values.items():
        template = template.replace(name, repr(value))
    return template


def shell(env: dict[str, str], template: str, what: str, **values: Any) -> Any:
    """`manage.py shell -c CODE` in the benchmark's environment; the last JSON line it printed."""
    out = run(manage("shell", "-c", code(template, **values)), env, what)[1]
    for line in reversed(out.splitlines()):
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise BenchError(f"{what} printed no JSON line:\n{out}")


@contextmanager
def scaleout_backend() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database and an empty Redis db; (DATABASE_URL, REDIS_URL). Dropped / flushed at the end."""
    name = f"fanout_bench_{os.getpid()}"
    client_env = dict(os.environ)
    pg = ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    keys = run(["redis-cli", "-u", REDIS_URL, "DBSIZE"], client_env, "redis-cli DBSIZE")[1].strip()
    print(f"redis db {REDIS_DB}: {keys} keys before the benchmark (flushed)")
    run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], client_env, "redis-cli FLUSHDB")
    run(["createdb", *pg, name], client_env, f"createdb {name}")
    try:
        yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}", REDIS_URL
    finally:
        try:
            run(["dropdb", *pg, "--if-exists", "--force", name], client_env, f"dropdb {name}")
        finally:
            run(["redis-cli", "-u", REDIS_URL, "FLUSHDB"], client_env, "redis-cli FLUSHDB")


@dataclass
class Machine:
    """One qcluster standing in for a machine: its own var dir (data set cache), the shared database and queue."""

    name: str
    var_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self) -> None:
        self.starts += 1
        try:
            self.proc = start_qcluster(self.env, self.var_dir / f"qcluster-{self.starts}.log")
        except RuntimeError as exc:
            raise BenchError(f"cluster {self.name}: {exc}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_qcluster(self.proc)
            self.proc = None

    def logs(self) -> list[Path]:
        return sorted(self.var_dir.glob("qcluster-*.log"))


@dataclass
class Fleet:
    machines: list[Machine]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def client_env(self) -> dict[str, str]:
        return self.machines[0].env

    def live(self) -> int:
        self.config = shell(self.client_env, CONFIG_CODE, "settings check")
        return int(self.config["clusters"])

    def ensure(self, n: int, timeout: float = 60) -> None:
        """Exactly the first `n` clusters running, django-q2's stats showing `n`, every warm runner idle."""
        for i, m in enumerate(self.machines):
            if i < n and not m.running:
                m.start()
            elif i >= n and m.running:
                m.stop()
        deadline = time.monotonic() + timeout
        while (seen := self.live()) != n:
            if time.monotonic() > deadline:
                raise BenchError(f"django-q2 reports {seen} clusters, expected {n}, after {timeout:.0f} s")
            time.sleep(0.5)
        for m in self.machines[:n]:
            assert m.proc is not None
            wait_idle_runner(FanoutProcesses(cluster_pid=m.proc.pid, var_dir=str(m.var_dir)))

    def owner(self, worker_pid: int | None) -> str:
        """Which cluster a worker belongs to: its process group is the qcluster's (started in its own session)."""
        if not worker_pid:
            return "-"
        try:
            group = os.getpgid(worker_pid)
        except ProcessLookupError:
            return "gone"
        return next((m.name for m in self.machines if m.proc is not None and m.proc.pid == group), "?")

    def stop_all(self) -> None:
        for m in self.machines:
            m.stop()

"""Shared parts of the end-to-end benchmarks: an isolated environment, `migrate`, a real qcluster,
timing whole subprocesses, reading `exportsearch ID --format json`, parallel accounting, process-tree
memory sampling (PSS from `/proc/<pid>/smaps_rollup`) and plain-text tables.

Nothing here asserts anything: benchmarks report, tests assert. Scripts exit non-zero only when a
subprocess fails (`BenchError`), never because of a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # so `python bench/<name>.py` finds the project's modules

from project.cluster import start_qcluster, stop_qcluster  # noqa: E402

# Settings that would point the run at a shared database, broker or cache instead of the temp dir.
SHARED_VARS = ("DATABASE_URL", "REDIS_URL", "FANOUT_SQLITE_PATH", "FANOUT_CACHE_DIR")


class BenchError(Exception):
    """A subprocess failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Environment, subprocesses, cluster
# ---------------------------------------------------------------------------------------------


def make_env(var_dir: Path, name: str = "bench") -> dict[str, str]:
    """This process's environment, isolated: private var dir, random secret key, unique cluster name."""
    env = {k: v for k, v in os.environ.items() if k not in SHARED_VARS}
    env.update(
        FANOUT_VAR_DIR=str(var_dir),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FANOUT_CLUSTER_NAME=f"{name}-{os.getpid()}",
        PYTHONUNBUFFERED="1",
        FANOUT_REUSE_FITS="0",  # rounds repeat the same search: each must fit, not copy the previous round's fits
    )
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def python_code(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def run(
    args: list[str],
    env: dict[str, str],
    what: str,
    cluster: subprocess.Popen[bytes] | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    stderr_into: list[str] | None = None,
) -> tuple[float, str]:
    """Run a subprocess to completion; return (wall seconds, stdout). Raise BenchError on failure.
    `stderr_into` gets its stderr appended.

    With `cluster`, stop waiting (and kill the subprocess) if the cluster dies: runsearch would wait forever.
    `on_start` gets the process right after it started (a memory sampler uses its pid)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err)
        if on_start is not None:
            on_start(proc)
        while proc.poll() is None:
            if cluster is not None and cluster.poll() is not None:
                proc.kill()
                proc.wait()
                raise BenchError(f"qcluster exited {cluster.returncode} while {what} was waiting for it")
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"{what} exited {proc.returncode}:\n{stdout}\n{stderr}".rstrip())
    if stderr_into is not None:
        stderr_into.append(stderr)
    return elapsed, stdout


def last_json_line(out: str, what: str) -> dict[str, Any]:
    """The last line of `out` that is a JSON object (baseline scripts print their numbers that way)."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise BenchError(f"{what} printed no JSON line:\n{out}")


@dataclass(frozen=True)
class FanoutRun:
    wall: float  # seconds, the whole `runsearch` subprocess
    search_id: int
    started: float  # unix time the subprocess was started
    ended: float


TIMELINE_CODE = """
import json
from django.db.models import Max, Min
from search.models import Result, Search
ts = lambda d: d.timestamp() if d else None
out = {}
for s in Search.objects.filter(pk__in=IDS):
    units = []
    for u in s.units.order_by("index"):
        agg = Result.objects.filter(unit=u).aggregate(first=Min("started_at"), last=Max("finished_at"))
        units.append({"index": u.index, "enqueued": ts(u.enqueued_at), "claimed": ts(u.started_at),
                      "first_fit": ts(agg["first"]), "last_fit": ts(agg["last"]), "finished": ts(u.finished_at),
                      "fits": u.fits_run, "processes_used": u.processes_used, "attempt": u.attempt})
    out[s.pk] = {"created": ts(s.created_at), "units": units}
print(json.dumps(out))
"""


def phases(run_: FanoutRun, timeline: dict[str, Any]) -> list[tuple[str, float]]:
    """Where a `runsearch` wall time went, from the stored timestamps (seconds per phase, in order)."""
    units = timeline["units"]
    out: list[tuple[str, float]] = [
        ("client start-up, validation, data check, rows", timeline["created"] - run_.started)
    ]
    previous = timeline["created"]
    for u in units:
        i = u["index"]
        if u["claimed"] is None or u["first_fit"] is None:
            continue
        out.append((f"unit {i}: wait until claimed", u["claimed"] - max(previous, u["enqueued"] or previous)))
        out.append((f"unit {i}: claim to first fit (runner, data)", u["first_fit"] - u["claimed"]))
        out.append((f"unit {i}: fits (first start to last end)", u["last_fit"] - u["first_fit"]))
        out.append((f"unit {i}: last fit to unit finished", u["finished"] - u["last_fit"]))
        previous = u["finished"]
    out.append(("last unit finished to runsearch exit (finalize, poll, exit)", run_.ended - previous))
    return out


def phases_table(runs: Sequence[FanoutRun], timelines: dict[int, dict[str, Any]]) -> str:
    """`phases` of several runs side by side: one column of seconds per round."""
    names: list[str] = []
    columns: list[dict[str, float]] = []
    for run_ in runs:
        column = dict(phases(run_, timelines[run_.search_id]))
        names.extend(n for n in column if n not in names)
        columns.append(column)
    rows = [[name, *(f"{c[name]:.2f}" if name in c else "" for c in columns)] for name in names]
    rows.append(["runsearch wall time", *(f"{r.wall:.2f}" for r in runs)])
    return table(["phase (s)", *(f"round {i}" for i in range(1, len(runs) + 1))], rows)


@dataclass
class Bench:
    """An isolated Fanout installation in a temporary directory, with a running qcluster."""

    var_dir: Path
    env: dict[str, str]
    cluster: subprocess.Popen[bytes]

    def write_spec(self, spec: dict[str, Any], name: str = "spec.json") -> Path:
        path = self.var_dir / name
        path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        return path

    def runsearch(
        self, spec_path: Path, on_start: Callable[[subprocess.Popen[bytes]], None] | None = None
    ) -> FanoutRun:
        """`runsearch SPEC.json` timed as a whole subprocess, with the id of the search it created."""
        started = time.time()
        elapsed, out = run(manage("runsearch", str(spec_path)), self.env, "runsearch", self.cluster, on_start)
        first = next((line for line in out.splitlines() if line.startswith("search ")), "")
        try:
            search_id = int(first.split()[1])
        except (IndexError, ValueError):
            raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None
        return FanoutRun(wall=elapsed, search_id=search_id, started=started, ended=started + elapsed)

    def timelines(self, search_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """When each search and each of its units was created, claimed, fitted and finished (unix s)."""
        code = TIMELINE_CODE.replace("IDS", repr(list(search_ids)))
        out = run(manage("shell", "-c", code), self.env, "timeline query")[1]
        return {int(k): v for k, v in last_json_line(out, "timeline query").items()}

    def wait_warm_runner(self) -> None:
        """Until the worker's spare runner is warm and quiet: a search then starts as it would on a cluster
        that was idle, not in the ~2 s after the previous search while the spare is still starting."""
        wait_idle_runner(FanoutProcesses(cluster_pid=self.cluster.pid, var_dir=str(self.var_dir)))

    def export(self, search_id: int) -> dict[str, Any]:
        """`manage.py exportsearch ID --format json`, parsed."""
        out = run(manage("exportsearch", str(search_id), "--format", "json"), self.env, "exportsearch")[1]
        data: dict[str, Any] = json.loads(out)
        return data

    def python(
        self, code: str, what: str, on_start: Callable[[subprocess.Popen[bytes]], None] | None = None
    ) -> tuple[float, str]:
        """A `python -c CODE` subprocess (a baseline) in the same environment, timed as a whole."""
        return run(python_code(code), self.env, what, on_start=on_start)


@contextlib.contextmanager
def bench_cluster(name: str, extra_env: dict[str, str] | None = None) -> Iterator[Bench]:
    """Temp dir + isolated env + `migrate` + a real qcluster (always stopped on the way out)."""
    with tempfile.TemporaryDirectory(prefix=f"fanout-{name}-") as tmp:
        var_dir = Path(tmp)
        env = make_env(var_dir, name)
        env.update(extra_env or {})
        run(manage("migrate", "--no-input"), env, "migrate")
        try:
            cluster = start_qcluster(env, var_dir / "qcluster.log")
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None
        try:
            yield Bench(var_dir=var_dir, env=env, cluster=cluster)
        finally:
            stop_qcluster(cluster)


def bench_main(body: Callable[[], None]) -> int:
    """Run a benchmark body; 1 (with the message) when a subprocess failed, else 0."""
    try:
        body()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def alternating_round(
    bench: Bench, spec_path: Path, baseline_code: str, n_fits: int, i: int
) -> tuple[FanoutRun, float, dict[str, Any]]:
    """Round `i`: Fanout and the GridSearchCV baseline, a,b then b,a, so neither side always runs warm.
    Returns (Fanout run, baseline wall seconds, the baseline's own JSON report)."""
    fanout_first = i % 2 == 0
    if not fanout_first:
        base, out = bench.python(baseline_code, "GridSearchCV baseline")
    bench.wait_warm_runner()
    fan = bench.runsearch(spec_path)
    if fanout_first:
        base, out = bench.python(baseline_code, "GridSearchCV baseline")
    inner = last_json_line(out, "GridSearchCV baseline")
    if inner["n_fits"] != n_fits:
        raise BenchError(f"GridSearchCV baseline ran {inner['n_fits']} fits, expected {n_fits}")
    return fan, base, inner


def repeats_argument(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds to run (default 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def load_line(label: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {label}: {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Right-aligned plain-text table; floats as given (format them before)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    met = value >= target if higher_is_better else value <= target
    return f"{'met' if met else 'NOT met'} (target {'≥' if higher_is_better else '≤'} {target:g})"


# ---------------------------------------------------------------------------------------------
# Parallel accounting
# ---------------------------------------------------------------------------------------------


def busy_from_cv_results(cv_results: dict[str, Any], n_splits: int) -> float:
    """Sum over candidates of (mean_fit_time + mean_score_time) × n_splits: every fit's busy seconds."""
    fit, score = cv_results["mean_fit_time"], cv_results["mean_score_time"]
    return float(sum(((f or 0.0) + (s or 0.0)) * n_splits for f, s in zip(fit, score, strict=True)))


@dataclass(frozen=True)
class Accounting:
    wall: float  # span of the fits (first start to last end)
    busy: float  # sum of fit + score times
    processes: int
    source: str  # "export" (the search's own accounting) or "computed" (from cv_results here)

    @property
    def speedup(self) -> float:
        return self.busy / self.wall if self.wall > 0 else float("nan")

    @property
    def efficiency(self) -> float:
        return self.speedup / self.processes if self.processes else float("nan")


def processes_used(search: dict[str, Any]) -> int:
    """Processes that ran fits at the same time: the largest `processes_used` of a unit (= cores_used)."""
    per_unit = [u.get("processes_used") or 0 for u in search.get("units", [])]
    return max([*per_unit, search.get("cores_used") or 0])


def fanout_accounting(export: dict[str, Any]) -> tuple[Accounting, Accounting | None]:
    """(computed here from cv_results + wall_time, the export's own accounting if it has one).

    Computed: busy = Σ (mean_fit_time + mean_score_time) × n_splits, wall = `search.wall_time`,
    processes = the most processes one unit used."""
    search = export["search"]
    computed = Accounting(
        wall=float(search["wall_time"] or 0.0),
        busy=busy_from_cv_results(export["cv_results"], int(search["n_splits"])),
        processes=processes_used(search),
        source="computed",
    )
    acc = search.get("accounting")
    if isinstance(acc, dict) and acc.get("wall") and acc.get("busy") is not None and acc.get("processes"):
        exported = Accounting(
            wall=float(acc["wall"]), busy=float(acc["busy"]), processes=int(acc["processes"]), source="export"
        )
        return computed, exported
    return computed, None


# ---------------------------------------------------------------------------------------------
# Processes, memory and CPU
# ---------------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHM = Path("/dev/shm")


@dataclass(frozen=True)
class Proc:
    ppid: int
    cpu: float  # user + system seconds so far


def process_table() -> dict[int, Proc]:
    """Every process visible now: {pid: (ppid, CPU seconds)} from /proc/<pid>/stat."""
    out: dict[int, Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid … utime stime: comm may hold spaces and parentheses, so split after the last ')'
        rest = stat[stat.rfind(b")") + 2 :].split()
        out[int(entry.name)] = Proc(ppid=int(rest[1]), cpu=(int(rest[11]) + int(rest[12])) / CLOCK_TICKS)
    return out


def descendants(roots: Iterable[int], procs: dict[int, Proc]) -> set[int]:
    """`roots` (those still alive) and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    found: set[int] = set()
    stack = [r for r in roots if r in procs]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def read_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def pss_rss_kb(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) in kB from /proc/<pid>/smaps_rollup; None if the process is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        return None
    return pss, rss


def joblib_shm_kb(pids: set[int]) -> int:
    """Size of joblib's memmapping folders in /dev/shm that processes in `pids` created (kB)."""
    total = 0
    try:
        entries = list(os.scandir(SHM))
    except OSError:
        return 0
    for entry in entries:
        parts = entry.name.split("_")
        if not entry.name.startswith("joblib_memmapping_folder_") or len(parts) < 4 or not parts[3].isdigit():
            continue
        if int(parts[3]) not in pids:
            continue
        with contextlib.suppress(OSError):
            total += sum(f.stat().st_size for f in os.scandir(entry.path) if f.is_file())
    return total // 1024


Groups = Callable[[dict[int, Proc]], dict[str, set[int]]]


@dataclass
class Sample:
    t: float  # perf_counter
    pss: dict[str, int]  # kB per group
    rss: dict[str, int]
    pids: dict[str, int]  # processes per group
    shm: dict[str, int]  # kB of joblib memmap folders per group


@dataclass
class Sampler:
    """Background thread: every `interval` s, sum PSS and RSS over groups of processes, and keep each
    process's last-seen CPU time (so CPU seconds per group survive processes that exit: at most one
    interval of CPU is lost per process).

    `groups(procs)` gets every process of the machine and returns {group name: pids}; a process is
    counted in the first group that lists it."""

    groups: Groups
    interval: float = 0.1
    memory: bool = True
    samples: list[Sample] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)  # seconds per sample (the sampler's own overhead)
    cpu: dict[int, tuple[str, float, float]] = field(default_factory=dict)  # pid: (group, first, last) CPU s
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_once(self) -> Sample:
        t0 = time.perf_counter()
        procs = process_table()
        seen: set[int] = set()
        sample = Sample(t0, {}, {}, {}, {})
        for name, pids in self.groups(procs).items():
            mine = pids - seen
            seen |= mine
            sample.pss[name] = sample.rss[name] = sample.pids[name] = 0
            for pid in sorted(mine):
                if pid in procs:
                    _, first, _ = self.cpu.get(pid, (name, procs[pid].cpu, 0.0))
                    self.cpu[pid] = (name, first, procs[pid].cpu)
                mem = pss_rss_kb(pid) if self.memory else (0, 0)
                if mem is not None:
                    sample.pss[name] += mem[0]
                    sample.rss[name] += mem[1]
                    sample.pids[name] += 1
            sample.shm[name] = joblib_shm_kb(mine) if self.memory else 0
        self.samples.append(sample)
        self.cost.append(time.perf_counter() - t0)
        return sample

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self.sample_once()
            self._stop.wait(max(0.0, self.interval - (time.perf_counter() - started)))

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.t <= end]

    def cpu_by_group(self, since_first_seen: bool = False) -> dict[str, float]:
        """CPU seconds per group: since each process started, or since the sampler first saw it."""
        out: dict[str, float] = {}
        for group, first, last in self.cpu.values():
            out[group] = out.get(group, 0.0) + last - (first if since_first_seen else 0.0)
        return out

    def overhead(self) -> str:
        if not self.cost:
            return "no samples"
        return (
            f"{len(self.cost)} samples every {self.interval:g} s, {1000 * statistics.mean(self.cost):.1f} ms each "
            f"(max {1000 * max(self.cost):.1f} ms)"
        )


def peak(samples: Sequence[Sample], groups: Sequence[str], kind: str = "pss") -> int:
    """Largest sum over `groups` in one sample (kB): the groups' peak at the same moment."""
    return max((sum(getattr(s, kind).get(g, 0) for g in groups) for s in samples), default=0)


def typical(samples: Sequence[Sample], groups: Sequence[str], kind: str = "pss") -> float:
    """Median over samples of the sum over `groups` (kB): a steady (idle) level."""
    return median(sum(getattr(s, kind).get(g, 0) for g in groups) for s in samples) if samples else 0.0


def mb(kb: float) -> str:
    return f"{kb / 1024:.0f}"


RUNNER_MARK = "search.engine.runner"


@dataclass
class FanoutProcesses:
    """Groups the processes of one benchmark's Fanout installation by role, for `Sampler`:

    - `client`: `runsearch` (pids added by the caller) and its children;
    - `runner`: every `python -m search.engine.runner` of this installation (its environment has our
      `FANOUT_VAR_DIR`; found by command line anywhere on the machine, so an orphan counts too) and all
      its descendants (loky workers, loky's resource tracker);
    - `worker`: the django-q2 worker(s) that started a runner (remembered once seen);
    - `infra`: the rest of the qcluster's process tree (main, sentinel, monitor, pusher …).

    A process's command line is re-read for its first second only (between fork and exec it still
    shows its parent's), then cached, so the scan stays cheap on a busy machine."""

    cluster_pid: int
    var_dir: str
    client: set[int] = field(default_factory=set)
    workers: set[int] = field(default_factory=set)
    _known: dict[int, tuple[float, bool]] = field(default_factory=dict)  # pid: (first seen, is our runner)

    def _is_runner(self, pid: int, now: float) -> bool:
        first, verdict_ = self._known.get(pid, (now, False))
        if now - first > 1.0:
            return verdict_
        ours = RUNNER_MARK in read_cmdline(pid) and read_environ(pid).get("FANOUT_VAR_DIR") == self.var_dir
        self._known[pid] = (first, ours)
        return ours

    def runners(self, procs: dict[int, Proc]) -> set[int]:
        now = time.monotonic()
        for pid in [p for p in self._known if p not in procs]:
            del self._known[pid]  # gone: its pid may be reused
        return {pid for pid in procs if self._is_runner(pid, now)}

    def __call__(self, procs: dict[int, Proc]) -> dict[str, set[int]]:
        cluster = descendants([self.cluster_pid], procs)
        runners = self.runners(procs)
        self.workers |= {procs[r].ppid for r in runners if procs[r].ppid in cluster}
        return {
            "client": descendants(self.client, procs),
            "runner": descendants(runners, procs),
            "worker": {w for w in self.workers if w in procs},
            "infra": cluster,
        }


def _runner_cores(runners: set[int]) -> int:
    """Loky workers a warm runner starts: one per core its CPU affinity allows, none when that is one core."""
    cores = os.cpu_count() or 1
    for pid in runners:
        with contextlib.suppress(OSError, AttributeError):
            cores = len(os.sched_getaffinity(pid))
    return cores if cores > 1 else 0


def wait_idle_runner(procs_by_role: FanoutProcesses, timeout: float = 90) -> None:
    """Until a warm runner of this installation is up (its loky workers started) and its process group
    has stopped using CPU: the idle state a search starts from."""
    deadline = time.monotonic() + timeout
    last_cpu = -1.0
    while time.monotonic() < deadline:
        procs = process_table()
        runners = procs_by_role.runners(procs)
        group = descendants(runners, procs)
        need = 1 + _runner_cores(runners)  # the runner and one loky worker per core it may use (none on one core)
        cpu = sum(procs[p].cpu for p in group if p in procs)
        if len(group) >= need and abs(cpu - last_cpu) < 0.02:
            return
        last_cpu = cpu
        time.sleep(0.5)
    raise BenchError(f"no idle warm runner within {timeout:.0f} s")


def run_with_stderr(
    args: list[str], env: dict[str, str], what: str, cluster: subprocess.Popen[bytes] | None = None
) -> tuple[float, str, str]:
    """`run`, also returning the subprocess's stderr: (wall seconds, stdout, stderr). Raise BenchError on failure."""
    box: list[str] = []
    elapsed, stdout = run(args, env, what, cluster, stderr_into=box)
    return elapsed, stdout, box[0]


def runsearch_timed(bench: Bench, spec_path: Path) -> tuple[FanoutRun, dict[str, float | None]]:
    """`runsearch SPEC.json --timings` timed as a whole subprocess: the run, and the unix time of each phase it
    printed (its `{"timings": …}` line on stderr) with `process exit` (seen here) added last."""
    started = time.time()
    elapsed, out, err = run_with_stderr(manage("runsearch", str(spec_path), "--timings"), bench.env, "runsearch",
                                        bench.cluster)  # fmt: skip
    first = next((line for line in out.splitlines() if line.startswith("search ")), "")
    try:
        search_id = int(first.split()[1])
    except (IndexError, ValueError):
        raise BenchError(f"runsearch printed no `search <ID>` line:\n{out}") from None
    timings: dict[str, float | None] = dict(last_json_line(err, "runsearch --timings")["timings"])
    if timings.get("process start") is None:
        timings["process start"] = started
    timings["process exit"] = started + elapsed
    return FanoutRun(wall=elapsed, search_id=search_id, started=started, ended=started + elapsed), timings

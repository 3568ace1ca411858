"""Running a work unit: claim it, supervise an isolated runner process, stream its fits into the DB.

Why this shape (HAZARDS.md):
- §1 django-q2 workers are daemonic, so joblib there silently uses one core. The fits run in a child
  interpreter (`python -m search.engine.runner`) in its own process group, which gets every core.
- §3 tasks are delivered more than once: the unit is claimed with one conditional UPDATE, finished
  cells are skipped, and results are inserted with ON CONFLICT DO NOTHING on (candidate, fold).
- §4 a killed worker's task may be redelivered late (ORM) or never (Redis): the unit's lease expires
  and `units_reconcile` (a django-q2 schedule) hands it out again.
- §5 cancel: the supervisor polls the unit row at every heartbeat and kills the runner's group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from search import machines, reuse_services, services
from search.engine.pilot import pump_events
from search.engine.run import Job, machine_name
from search.models import Candidate, Result, Search, Status, WorkUnit

log = logging.getLogger(__name__)

T = TypeVar("T")
HEARTBEAT_SECONDS = 2.0
TIMED_OUT = "timed out"
FLUSH_SECONDS = 0.5


def _lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.FANOUT_LEASE_SECONDS)


def unit_claim(*, unit_id: int) -> WorkUnit | None:
    """Take a unit for this process with one conditional UPDATE; None if someone else has it or it is over."""
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_until__lt=now)
    live_search = Q(search__status__in=[Status.QUEUED, Status.RUNNING])
    with transaction.atomic():
        if not machines.may_claim(unit_id=unit_id, host=machine_name(), now=now):
            raise machines.Declined(unit_id)  # a search limited to machines that already hold a place
        claimed = WorkUnit.objects.filter(claimable, live_search, pk=unit_id).update(
            status=Status.RUNNING,
            attempt=F("attempt") + 1,
            lease_until=_lease(),
            host=machine_name(),
            worker_pid=os.getpid(),
            runner_pid=None,
            started_at=now,
            finished_at=None,
            error="",
            fits_run=0,
        )
        if not claimed:
            return None
        unit = WorkUnit.objects.select_related("search", "search__dataset").get(pk=unit_id)
        Search.objects.filter(pk=unit.search_id, status=Status.QUEUED).update(status=Status.RUNNING, started_at=now)
    return unit


def _pending_cells(unit: WorkUnit) -> list[tuple[int, int, dict[str, Any]]]:
    """(candidate index, fold, params) of this unit's fits that are not stored yet."""
    done = set(
        Result.objects.filter(search_id=unit.search_id, candidate__index__gte=unit.candidate_start,
                              candidate__index__lt=unit.candidate_stop)
        .values_list("candidate__index", "fold")
    )  # fmt: skip
    cands = Candidate.objects.filter(
        search_id=unit.search_id, index__gte=unit.candidate_start, index__lt=unit.candidate_stop
    ).order_by("index")
    return [
        (c.index, fold, c.params) for c in cands for fold in range(unit.search.n_splits) if (c.index, fold) not in done
    ]


def unit_job(unit: WorkUnit, cells: list[tuple[int, int, dict[str, Any]]]) -> Job:
    search = unit.search
    spec = search.spec
    steps = [(name, module) for name, module in search.steps]
    if not steps:  # rows stored before `steps` existed: resolve through the registry
        from search.engine import registry

        steps = [(name, registry.lookup(name).module) for name in search.estimator.split(" → ")]
    scoring = spec.get("scoring")
    return Job(
        steps=steps,
        params=spec.get("params", {}),
        # `key`, the data set's content hash, goes into every fit's key (engine.reuse.fit_keys)
        data={**search.dataset.data_source(services.dataset_local_path(search.dataset)), "key": search.dataset.key},
        cv=spec["cv"],
        scoring=scoring,
        n_jobs=search.n_jobs,
        return_train_score=bool(spec.get("return_train_score")),
        cells=cells,
        cluster_workers=int(settings.Q_CLUSTER.get("workers", 1)),
        subsample=services.halving_subsample(search, unit.iteration),
        path_reuse=settings.FANOUT_PATH_REUSE,
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The loky workers are not our children: wait (briefly) until the kernel has really ended them too. A
    # worker holding a large model takes a moment to exit, and "stopped" must mean nothing runs any more.
    deadline = time.monotonic() + 5.0
    while _group_running(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_running(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting for init to reap them do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False  # no /proc (not Linux): nothing to wait for
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


# A warm runner waits in each django-q2 worker: interpreter started, scikit-learn imported, loky pool
# up. Taking it saves ~2 s per unit. A runner whose job ended cleanly is kept as the next spare (its
# pool and imports stay warm, so back-to-back units and halving rounds start at once); any other end
# (cancel, timeout, crash, lost lease) kills its whole group, and a fresh spare is started when idle.
RUNNER_MAX_JOBS = 200  # a reused runner is retired after this many jobs, bounding what a leak could hold


@dataclass
class _Runner:
    """One runner process with its event stream; it takes one job per line on stdin, one after another."""

    proc: subprocess.Popen[str]
    events: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    jobs: int = 0

    def __post_init__(self) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=pump_events, args=(self.proc.stdout, self.events), daemon=True).start()
        threading.Thread(target=_drain, args=(self.proc.stderr, self.stderr), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, job: Job) -> None:
        assert self.proc.stdin is not None
        self.stderr.clear()
        self.jobs += 1
        self.proc.stdin.write(json.dumps(job.to_dict(), allow_nan=False) + "\n")
        self.proc.stdin.flush()


_spare: _Runner | None = None
_keep_spare = False


def _start_runner(*, warm: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search.engine.runner", *(["--warm"] if warm else [])],
        cwd=str(settings.BASE_DIR),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so one killpg takes every loky child too
        env={**os.environ, "FANOUT_RUNNER_PARENT": str(os.getpid())},
    )


def keep_warm_runner(**kwargs: Any) -> None:
    """django-q2 `post_spawn` receiver: every worker keeps one warm runner ready."""
    global _keep_spare, _spare
    _keep_spare = True
    if _spare is None:
        _spare = _Runner(_start_runner(warm=True))


def _replace_spare() -> None:
    global _spare
    if _keep_spare and (_spare is None or not _spare.alive()):
        _spare = _Runner(_start_runner(warm=True))


def _take_runner(job: Job) -> _Runner:
    """The spare (kept from the last unit, or warmed while idle) if it is alive, else a new runner; `job` sent."""
    global _spare
    runner, _spare = _spare, None
    if runner is None or not runner.alive():
        runner = _Runner(_start_runner(warm=False))
    runner.send(job)
    return runner


def _release_runner(runner: _Runner, *, reusable: bool) -> None:
    """Keep a cleanly finished runner as the next spare; otherwise kill its whole group."""
    global _spare
    if reusable and _keep_spare and _spare is None and runner.alive() and runner.jobs < RUNNER_MAX_JOBS:
        _spare = runner
        return
    _kill_group(runner.proc)


def spawn_runner(job: Job) -> subprocess.Popen[str]:
    """A one-job runner (its stdin closed after `job`, so it exits at the end), for pilots."""
    proc = _start_runner(warm=False)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(job.to_dict(), allow_nan=False) + "\n")
    proc.stdin.close()
    return proc


def _drain(stream: IO[str], tail: deque[str]) -> None:
    """Keep reading the runner's stderr so a chatty estimator can never block on a full pipe."""
    for line in stream:
        tail.append(line)


@dataclass
class _Progress:
    started: dict[str, Any] | None = None
    ended: dict[str, Any] | None = None
    error: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    fits: int = 0
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    threads: dict[str, dict[str, int]] = field(default_factory=dict)


def _ts(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


def results_write(*, unit: WorkUnit, fits: list[dict[str, Any]]) -> None:
    """Insert fits idempotently (a (candidate, fold) already stored is left as it is)."""
    if not fits:
        return
    ids = dict(
        Candidate.objects.filter(search_id=unit.search_id, index__in={f["candidate"] for f in fits}).values_list(
            "index", "pk"
        )
    )
    rows = [
        Result(
            search_id=unit.search_id,
            candidate_id=ids[f["candidate"]],
            fold=f["fold"],
            unit=unit,
            attempt=unit.attempt,
            test_scores=f["test_scores"],
            train_scores=f["train_scores"],
            fit_time=f["fit_time"],
            score_time=f["score_time"],
            started_at=_ts(f["started_at"]),
            finished_at=_ts(f["finished_at"]),
            host=f["host"],
            pid=f["pid"],
            n_test_samples=f["n_test_samples"],
            error=f["error"],
            fit_key=f.get("fit_key", ""),
            path_reused=bool(f.get("path_reused", False)),
        )
        for f in fits
    ]
    with transaction.atomic():
        Result.objects.bulk_create(rows, ignore_conflicts=True)
    services.search_refresh_progress(search_id=unit.search_id)


def _with_db_retry(action: Callable[[], T], deadline: float) -> T:
    """Run a short DB write, retrying while the database is unreachable or locked, until `deadline`.

    Each write is one transaction, so a failed attempt leaves nothing half-written; the fits waiting
    to be stored stay in memory meanwhile (the runner keeps fitting)."""
    delay = 0.5
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
            connection.close()  # a broken connection is replaced on the next query
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _flush(unit: WorkUnit, progress: _Progress) -> None:
    results_write(unit=unit, fits=progress.pending)
    progress.fits += len(progress.pending)
    progress.pending = []


def _heartbeat(unit: WorkUnit, progress: _Progress) -> bool:
    """Renew the lease and publish live counters; False when the unit is no longer ours (cancel, reclaim)."""
    update: dict[str, Any] = {"lease_until": _lease(), "fits_run": progress.fits}
    if progress.started:
        update.update(
            n_jobs_requested=progress.started["n_jobs_requested"],
            n_jobs_effective=progress.started["n_jobs_effective"],
            cpu_count=progress.started["cpu_count"],
            threads={
                "inner_threads": progress.started.get("inner_threads"),
                "machine_cores": progress.started.get("machine_cores"),
                "warnings": progress.started.get("warnings", []),
                "processes": progress.threads,
            },
        )
    if progress.pids:
        update.update(processes_used=len(progress.pids), worker_pids=sorted(progress.pids))
    return bool(WorkUnit.objects.filter(pk=unit.pk, attempt=unit.attempt, status=Status.RUNNING).update(**update))


def _supervise(unit: WorkUnit, runner: _Runner, progress: _Progress) -> str:
    """Stream the runner's events for this unit's job into the DB until it ends; returns why it stopped."""
    events = runner.events
    progress.stderr = runner.stderr
    deadline = time.monotonic() + settings.FANOUT_UNIT_TIMEOUT
    next_flush = next_beat = time.monotonic()
    over = False
    while not over:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            event = {}
        kind = "eof" if event is None else event.get("event")
        if kind == "fit":
            assert event is not None
            progress.pending.append(event)
            progress.pids.add(event["pid"])
            if event.get("threads"):
                progress.threads[str(event["pid"])] = event["threads"]
        elif kind == "start":
            progress.started = event
        elif kind in ("end", "error", "eof"):
            over = True  # `end`: every cell is in; no need to wait for the interpreter to exit
            progress.ended = event if kind == "end" else None
            if kind == "error":
                assert event is not None
                progress.error = event["message"]
                log.error("runner failed for %s: %s", unit, event.get("traceback", ""))
        now = time.monotonic()
        outage_limit = time.monotonic() + settings.FANOUT_DB_RETRY_SECONDS
        if now >= next_flush or over:
            _with_db_retry(lambda: _flush(unit, progress), outage_limit)
            next_flush = now + FLUSH_SECONDS
        if now >= next_beat or over:
            if not _with_db_retry(lambda: _heartbeat(unit, progress), outage_limit):
                return "lost"
            next_beat = now + HEARTBEAT_SECONDS
        if now > deadline:
            _with_db_retry(lambda: _flush(unit, progress), outage_limit)  # keep what finished in time
            return TIMED_OUT
    return "ended"


def _finish_unit(unit: WorkUnit, status: str, error: str = "", timed_out: bool = False) -> bool:
    return bool(
        WorkUnit.objects.filter(pk=unit.pk, attempt=unit.attempt, status=Status.RUNNING).update(
            status=status, error=error, finished_at=timezone.now(), lease_until=None, timed_out=timed_out
        )
    )


def unit_run(*, unit_id: int) -> str:
    """Claim and run one unit to the end. Safe to call any number of times, from any process."""
    try:
        unit = unit_claim(unit_id=unit_id)
    except machines.Declined:
        return machines.unit_decline(unit_id=unit_id)
    if unit is None:
        return "skipped"
    cells = _pending_cells(unit)
    if cells and reuse_services.reuse_enabled(unit):  # identical fits stored earlier are copied, not rerun
        cells = reuse_services.results_reuse(unit=unit, job=unit_job(unit, cells))
    if not cells:
        _finish_unit(unit, Status.DONE)
        services.search_finalize(search_id=unit.search_id)
        return "done"
    runner = _take_runner(unit_job(unit, cells))
    WorkUnit.objects.filter(pk=unit.pk, attempt=unit.attempt).update(runner_pid=runner.pid)
    progress = _Progress()
    why = "interrupted"
    try:
        why = _supervise(unit, runner, progress)
    finally:  # django-q2 timeout, worker shutdown, any error: never leave the runner group behind
        _release_runner(runner, reusable=why == "ended" and progress.ended is not None)
    outcome = _conclude(unit, runner.proc, progress, why)
    services.search_finalize(search_id=unit.search_id)
    _replace_spare()
    return outcome


def _conclude(unit: WorkUnit, proc: subprocess.Popen[str], progress: _Progress, why: str) -> str:
    if why == "lost":  # cancelled, or the lease was taken over: the new owner decides
        return "stopped"
    if why == "ended" and progress.ended is not None:
        _finish_unit(unit, Status.DONE)
        return "done"
    stderr = "".join(progress.stderr).strip()
    error = progress.error or (why if why != "ended" else f"runner exited with code {proc.returncode}")
    if stderr and not progress.error:
        error += f"\n{stderr.splitlines()[-1]}"
    if why == "ended" and not progress.error and unit.attempt < settings.FANOUT_MAX_ATTEMPTS:
        # A crash (killed runner, out of memory): try again; finished fits are kept and skipped.
        if _finish_unit(unit, Status.QUEUED, error=f"attempt {unit.attempt}: {error}"):
            services.search_enqueue(search_id=unit.search_id, units=[unit])
        return "requeued"
    if why == TIMED_OUT:  # a timeout is final: the same fits would only run out of time again
        error = f"stopped after {settings.FANOUT_UNIT_TIMEOUT} s (FANOUT_UNIT_TIMEOUT), {progress.fits} fits stored"
    _finish_unit(unit, Status.FAILED, error=error, timed_out=why == TIMED_OUT)
    return "failed"


def units_reconcile() -> dict[str, int]:
    """Hand out again units whose worker vanished (lease expired); finish searches with no live work.

    Runs as a django-q2 schedule every minute, and can be called by hand (`manage.py reconcile`)."""
    now = timezone.now()
    stale = list(WorkUnit.objects.filter(status=Status.RUNNING, lease_until__lt=now).select_related("search"))
    requeued = failed = 0
    for unit in stale:
        if unit.attempt >= settings.FANOUT_MAX_ATTEMPTS:
            failed += WorkUnit.objects.filter(pk=unit.pk, attempt=unit.attempt, status=Status.RUNNING).update(
                status=Status.FAILED, error=f"worker on {unit.host} stopped answering {unit.attempt} times",
                finished_at=now,
            )  # fmt: skip
        elif WorkUnit.objects.filter(pk=unit.pk, attempt=unit.attempt, status=Status.RUNNING).update(
            status=Status.QUEUED, error=f"worker on {unit.host} (pid {unit.worker_pid}) stopped answering"
        ):
            services.search_enqueue(search_id=unit.search_id, units=[unit])
            requeued += 1
    resent = _resend_lost(now)
    finalized = 0
    for search_id in Search.objects.active().values_list("pk", flat=True):
        if not WorkUnit.objects.filter(search_id=search_id, status__in=[Status.QUEUED, Status.RUNNING]).exists():
            services.search_finalize(search_id=search_id)
            finalized += 1
    return {"requeued": requeued, "resent": resent, "failed": failed, "finalized": finalized}


def _resend_lost(now: datetime) -> int:
    """Enqueue again queued units whose message the broker lost.

    Redis drops the running and prefetched tasks of a killed cluster, a rotated SECRET_KEY makes every
    queued message unreadable, and a crash between commit and enqueue sends none (HAZARDS.md §4, §6).
    When the broker holds fewer messages than there are queued units, the units waiting longest are
    sent again; a duplicate costs nothing (the second claim finds the unit taken or done)."""
    from django_q.brokers import get_broker

    before = now - timedelta(seconds=settings.FANOUT_RESEND_SECONDS)
    live = Q(search__status__in=[Status.QUEUED, Status.RUNNING])
    waited = Q(enqueued_at__lt=before) | Q(enqueued_at=None, search__study=None, search__created_at__lt=before)
    waiting = WorkUnit.objects.filter(live, waited, status=Status.QUEUED)
    if not waiting.exists():
        return 0
    missing = WorkUnit.objects.filter(live, status=Status.QUEUED).count() - int(get_broker().queue_size() or 0)
    units = list(waiting.order_by(F("enqueued_at").asc(nulls_first=True), "pk")[: max(0, missing)])
    for unit in units:
        services.search_enqueue(search_id=unit.search_id, units=[unit])
    return len(units)

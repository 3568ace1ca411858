"""Running a work unit: claim it, hand its fits to a warm runner process, stream them into the database.

Why this shape (docs/traps.md):
- the daemonic-worker trap: django-q2 workers are daemonic, so joblib there silently uses one core. The
  fits run in a child interpreter (`python -m search.engine.runner`, services.runners) in its own process
  group, which gets every core.
- at-least-once delivery: the unit is claimed with one conditional UPDATE, finished cells are skipped, and
  results are inserted with ON CONFLICT DO NOTHING on (candidate, fold).
- a killed worker's task may be redelivered late (ORM) or never (Redis): the unit's lease expires and
  services.reconcile hands it out again. Leases are read and written on the database's clock (`Now()`),
  never a machine's own: one machine 30 s ahead would otherwise see every other machine's lease expired.
- cancel: the supervisor polls the unit row at every heartbeat and kills the runner's group."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone

from search.engine import registry
from search.engine.fits import machine_name
from search.engine.run import Job
from search.models import Candidate, FittedModel, Result, Search, Status, WorkUnit
from search.services.artifacts import model_store
from search.services.fairshare import unit_claim_fair
from search.services.finalize import results_insert, search_finalize
from search.services.machines import Declined, may_claim, unit_decline
from search.services.merging import merge_following
from search.services.reuse import results_reuse, reuse_enabled
from search.services.runners import Runner, runner_release, runner_take, spare_replace
from search.services.searches import search_enqueue

log = logging.getLogger(__name__)


T = TypeVar("T")


HEARTBEAT_SECONDS = 2.0


class Outcome(StrEnum):
    """How one call of `unit_run` ended (the django-q2 task's result)."""

    DONE = "done"  # every cell of the unit is stored
    SKIPPED = "skipped"  # someone else holds the unit, or it is over (a duplicate delivery)
    DECLINED = "declined"  # its search may not use this machine now; the unit went back to the broker
    STOPPED = "stopped"  # cancelled, or the lease was taken over: the new holder decides
    REQUEUED = "requeued"  # the runner crashed; queued again, finished fits kept
    FAILED = "failed"  # a runner error, a timeout, or out of attempts


class Stop(StrEnum):
    """Why the supervision of a runner ended."""

    ENDED = "ended"  # the runner said `end` or `error`, or its output closed
    LOST = "lost"  # the unit is no longer held by this attempt
    TIMED_OUT = "timed out"  # FANOUT_UNIT_TIMEOUT passed
    INTERRUPTED = "interrupted"  # an exception (django-q2 timeout, worker shutdown) left the supervisor


FLUSH_SECONDS = 0.5


def _lease() -> CombinedExpression:
    """The end of a lease taken or renewed now, on the database's clock (the same for every machine)."""
    return Now() + timedelta(seconds=settings.FANOUT_LEASE_SECONDS)


def unit_claim(*, unit_id: int) -> WorkUnit | None:
    """Take a unit for this process with one conditional UPDATE; None if someone else has it or it is over."""
    now = timezone.now()
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_until__lt=Now())
    live_search = Q(search__status__in=Status.ACTIVE)
    with transaction.atomic():
        if not may_claim(unit_id=unit_id, host=machine_name()):
            raise Declined(unit_id)  # a search limited to machines that already hold a place
        claimed = WorkUnit.objects.filter(claimable, live_search, pk=unit_id).update(
            status=Status.RUNNING,
            attempt=F("attempt") + 1,
            lease_until=_lease(),
            host=machine_name(),
            worker_pid=os.getpid(),
            runner_pid=None,
            started_at=Now(),
            finished_at=None,
            error="",
            fits_run=0,
        )
        if not claimed:
            return None
        # The data set's bytes (a CSV of up to FANOUT_MAX_UPLOAD_MB) stay in the database unless needed.
        unit = (
            WorkUnit.objects.select_related("search", "search__dataset")
            .defer("search__dataset__content")
            .get(pk=unit_id)
        )
        merge_following(unit)  # short units after it taken over (services.merging)
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


def halving_subsample(search: Search, round_no: int) -> dict[str, Any] | None:
    """The runner's subsampling for a halving round over `n_samples` (None when nothing is subsampled)."""
    hs = search.stored.halving
    if hs is None or hs.resource != "n_samples":
        return None
    n_resources = search.schedule["n_resources"][round_no]
    n_samples = search.holdout["n_train"] if search.holdout else search.dataset.n_samples
    return {"fraction": n_resources / n_samples, "random_state": search.stored.random_state}


def job_data(search: Search) -> dict[str, Any]:
    """Where a job's rows come from: the data set, its content hash (`key`, part of every fit's key:
    engine.reuse.fit_keys) and the held-out split the runner applies first (engine.holdout)."""
    data = {**search.dataset.data_source(), "key": search.dataset.key}
    if search.stored.holdout:
        data["holdout"] = search.stored.holdout
    return data


def job_steps(search: Search) -> list[tuple[str, str]]:
    steps = [(name, module) for name, module in search.steps]
    if not steps:  # rows stored before `steps` existed: resolve through the registry
        steps = [(name, registry.lookup(name).module) for name in search.estimator.split(" → ")]
    return steps


def unit_job(unit: WorkUnit, cells: list[tuple[int, int, dict[str, Any]]], output: str = "") -> Job:
    """The runner's job for a unit: its pending (candidate, fold) cells, or for a refit unit its one candidate
    (fold -1), to be fitted on every training row and written into `output`."""
    search = unit.search
    spec = search.stored
    return Job(
        steps=job_steps(search),
        params=spec.params,
        data=job_data(search),
        cv=spec.cv.to_dict(),
        scoring=spec.scoring_json,
        n_jobs=search.n_jobs,
        return_train_score=spec.return_train_score,
        cells=cells,
        cluster_workers=int(settings.Q_CLUSTER.get("workers", 1)),
        subsample=halving_subsample(search, unit.round) if unit.kind == WorkUnit.Kind.CV else None,
        path_reuse=settings.FANOUT_PATH_REUSE,
        batch=settings.FANOUT_FIT_BATCH,
        task=unit.kind,
        output=output,
    )


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
    refit: dict[str, Any] | None = None  # a refit job's `refit` event (engine.refit.RefitResult)


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
    results_insert(search_id=unit.search_id, rows=rows)


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
                "fit_threads": progress.started.get("fit_threads", 1),
                "processes": progress.threads,
            },
        )
    if progress.pids:
        update.update(processes_used=len(progress.pids), worker_pids=sorted(progress.pids))
    return bool(WorkUnit.objects.held(unit).update(**update))


def _supervise(unit: WorkUnit, runner: Runner, progress: _Progress) -> Stop:
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
        if kind in ("fit", "fits"):
            assert event is not None
            for fit in event["fits"] if kind == "fits" else [event]:
                progress.pending.append(fit)
                progress.pids.add(fit["pid"])
                if fit.get("threads"):
                    progress.threads[str(fit["pid"])] = fit["threads"]
        elif kind == "start":
            progress.started = event
        elif kind == "refit":
            progress.refit = event
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
                return Stop.LOST
            next_beat = now + HEARTBEAT_SECONDS
        if now > deadline:
            _with_db_retry(lambda: _flush(unit, progress), outage_limit)  # keep what finished in time
            return Stop.TIMED_OUT
    return Stop.ENDED


def _finish_unit(unit: WorkUnit, status: str, error: str = "", timed_out: bool = False) -> bool:
    return bool(
        WorkUnit.objects.held(unit).update(
            status=status, error=error, finished_at=Now(), lease_until=None, timed_out=timed_out
        )
    )


def unit_run(*, unit_id: int) -> Outcome:
    """Claim and run one unit to the end. Safe to call any number of times, from any process. With
    FANOUT_FAIR_SHARE the message naming `unit_id` is a turn: the unit run is chosen by services.fairshare."""
    try:
        fair = settings.FANOUT_FAIR_SHARE
        unit = unit_claim_fair(offered=unit_id, claim=unit_claim) if fair else unit_claim(unit_id=unit_id)
    except Declined as declined:
        return Outcome.DECLINED if unit_decline(unit_id=declined.args[0]) else Outcome.SKIPPED
    if unit is None:
        return Outcome.SKIPPED
    if unit.kind == WorkUnit.Kind.REFIT:
        outcome = _refit_run(unit)
        search_finalize(search_id=unit.search_id)
        return outcome
    cells = _pending_cells(unit)
    if cells and reuse_enabled(unit):  # identical fits stored earlier are copied, not rerun
        cells = results_reuse(unit=unit, job=unit_job(unit, cells))
    if not cells:
        _finish_unit(unit, Status.DONE)
        search_finalize(search_id=unit.search_id)
        refit_now(after=unit)
        return Outcome.DONE
    runner, progress, why = _in_runner(unit, unit_job(unit, cells))
    outcome = _conclude(unit, runner.proc, progress, why)
    search_finalize(search_id=unit.search_id)
    spare_replace()
    refit_now(after=unit)
    return outcome


def _in_runner(unit: WorkUnit, job: Job) -> tuple[Runner, _Progress, Stop]:
    """Hand `job` to a warm runner and supervise it until it ends; the runner is released in every case."""
    runner = runner_take(job)
    WorkUnit.objects.held(unit).update(runner_pid=runner.pid)
    progress = _Progress()
    why = Stop.INTERRUPTED
    try:
        why = _supervise(unit, runner, progress)
    finally:  # django-q2 timeout, worker shutdown, any error: never leave the runner group behind
        runner_release(runner, reusable=why == Stop.ENDED and progress.ended is not None)
    return runner, progress, why


def _refit_run(unit: WorkUnit) -> Outcome:
    """The refit unit: the best candidate fitted on every training row in a runner (on the cluster), its
    model files and card stored once (services.artifacts). A second delivery after that only closes the unit."""
    if FittedModel.objects.filter(search_id=unit.search_id).exists():
        _finish_unit(unit, Status.DONE)
        return Outcome.DONE
    best = Candidate.objects.get(search_id=unit.search_id, index=unit.candidate_start)
    output = Path(tempfile.mkdtemp(prefix=f"refit-{unit.search_id}-", dir=settings.VAR_DIR))
    try:
        runner, progress, why = _in_runner(unit, unit_job(unit, [(best.index, -1, best.params)], str(output)))
        if why == Stop.ENDED and progress.ended is not None and progress.refit is not None:
            refit = progress.refit
            deadline = time.monotonic() + settings.FANOUT_DB_RETRY_SECONDS
            stored = _with_db_retry(lambda: model_store(unit=unit, candidate=best, refit=refit), deadline)
            outcome = Outcome.DONE if stored else Outcome.STOPPED
        else:
            outcome = _conclude(unit, runner.proc, progress, why)
    finally:
        shutil.rmtree(output, ignore_errors=True)
    spare_replace()
    return outcome


def _conclude(unit: WorkUnit, proc: subprocess.Popen[str], progress: _Progress, why: Stop) -> Outcome:
    if why == Stop.LOST:  # cancelled, or the lease was taken over: the new owner decides
        return Outcome.STOPPED
    if why == Stop.ENDED and progress.ended is not None:
        _finish_unit(unit, Status.DONE)
        return Outcome.DONE
    stderr = "".join(progress.stderr).strip()
    error = progress.error or (str(why) if why != Stop.ENDED else f"runner exited with code {proc.returncode}")
    if stderr and not progress.error:
        error += f"\n{stderr.splitlines()[-1]}"
    if why == Stop.ENDED and not progress.error and unit.attempt < settings.FANOUT_MAX_ATTEMPTS:
        # A crash (killed runner, out of memory): try again; finished fits are kept and skipped.
        if _finish_unit(unit, Status.QUEUED, error=f"attempt {unit.attempt}: {error}"):
            search_enqueue(search_id=unit.search_id, units=[unit])
        return Outcome.REQUEUED
    if why == Stop.TIMED_OUT:  # a timeout is final: the same fits would only run out of time again
        error = f"stopped after {settings.FANOUT_UNIT_TIMEOUT} s (FANOUT_UNIT_TIMEOUT), {progress.fits} fits stored"
    _finish_unit(unit, Status.FAILED, error=error, timed_out=why == Stop.TIMED_OUT)
    return Outcome.FAILED


def refit_now(*, after: WorkUnit) -> Outcome | None:
    """Run the search's refit unit here at once if ending the CV unit `after` has just queued it: this worker
    holds the warm runner, so the model waits for no broker round trip, and the message sent for the refit
    unit finds it claimed and is skipped. It is claimed by `unit_claim`'s conditional UPDATE like any unit
    (once, cancel and leases as usual). A refit this machine may not claim (services.machines), or one
    after a CV unit that ran over half of FANOUT_UNIT_TIMEOUT (both must fit in one django-q2 task's
    timeout), is left to the broker. Returns the refit's outcome, or None when it was not run here."""
    if after.started_at and (timezone.now() - after.started_at).total_seconds() > settings.FANOUT_UNIT_TIMEOUT / 2:
        return None
    queued = WorkUnit.objects.filter(search_id=after.search_id, kind=WorkUnit.Kind.REFIT, status=Status.QUEUED)
    unit_id = queued.values_list("pk", flat=True).first()
    if unit_id is None:
        return None
    try:
        refit = unit_claim(unit_id=unit_id)
    except Declined:
        return None
    if refit is None:
        return None
    outcome = _refit_run(refit)
    search_finalize(search_id=refit.search_id)
    return outcome

"""The reconciler: units whose worker vanished are handed out again, lost broker messages resent, and
searches with no live work finished (docs/traps.md, a killed worker).

It runs beside the work queue, never on it: every machine's `manage.py fanoutcluster` calls it every
FANOUT_RECONCILE_SECONDS from a thread of its own, so it runs while every worker is busy fitting, and no
reconcile message ever sits in the broker to hide a lost one. Several machines may run it at once: every
change it makes is a conditional UPDATE. Leases are compared on the database's clock."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from search.models import Search, Status, WorkUnit
from search.services.finalize import search_finalize
from search.services.predictions import predictions_reconcile
from search.services.searches import messages_missing, search_enqueue


def units_reconcile() -> dict[str, int]:
    """Hand out again units whose worker vanished (lease expired); finish searches with no live work; fail
    predictions stuck running and resend lost ones (`services.predictions.predictions_reconcile`).

    Called every FANOUT_RECONCILE_SECONDS by each machine's `fanoutcluster`, and by hand (`manage.py reconcile`)."""
    stale = WorkUnit.objects.filter(status=Status.RUNNING, lease_until__lt=Now()).select_related("search")
    requeued, failed = _hand_out(list(stale), "stopped answering")
    resent = _resend_lost(timezone.now())
    finalized = 0
    for search_id in Search.objects.active().values_list("pk", flat=True):
        if not WorkUnit.objects.filter(search_id=search_id, status__in=Status.ACTIVE).exists():
            search_finalize(search_id=search_id)
            finalized += 1
    counts = {"requeued": requeued, "resent": resent, "failed": failed, "finalized": finalized}
    return counts | {"predictions": predictions_reconcile()}


def units_release(*, host: str, worker_pids: Collection[int]) -> int:
    """Hand out again, without waiting for their lease, the running units of workers on `host` known to have
    ended (their own cluster saw them end, or stopped them). Returns how many were requeued or failed."""
    if not worker_pids:
        return 0
    held = WorkUnit.objects.filter(status=Status.RUNNING, host=host, worker_pid__in=list(worker_pids))
    return sum(_hand_out(list(held.select_related("search")), "ended mid-unit"))


def _hand_out(units: list[WorkUnit], why: str) -> tuple[int, int]:
    """Queue each unit again (fail it after FANOUT_MAX_ATTEMPTS claims), if this attempt still holds it."""
    requeued = failed = 0
    for unit in units:
        if unit.attempt >= settings.FANOUT_MAX_ATTEMPTS:
            failed += WorkUnit.objects.held(unit).update(
                status=Status.FAILED, error=f"worker on {unit.host} {why} {unit.attempt} times", finished_at=Now()
            )
        elif WorkUnit.objects.held(unit).update(
            status=Status.QUEUED, error=f"worker on {unit.host} (pid {unit.worker_pid}) {why}"
        ):
            search_enqueue(search_id=unit.search_id, units=[unit])
            requeued += 1
    return requeued, failed


def _resend_lost(now: datetime) -> int:
    """Enqueue again queued units whose message the broker lost.

    Redis drops the running and prefetched tasks of a killed cluster, a rotated SECRET_KEY makes every
    queued message unreadable, and a crash between commit and enqueue sends none (docs/traps.md, a killed worker).
    When the broker holds fewer messages than there are queued units, the units waiting longest are
    sent again; a duplicate costs nothing (the second claim finds the unit taken or done)."""
    before = now - timedelta(seconds=settings.FANOUT_RESEND_SECONDS)
    live = Q(search__status__in=Status.ACTIVE)
    waited = Q(enqueued_at__lt=before) | Q(enqueued_at=None, search__study=None, search__created_at__lt=before)
    waiting = WorkUnit.objects.filter(live, waited, status=Status.QUEUED)
    if not waiting.exists():
        return 0
    units = list(waiting.order_by(F("enqueued_at").asc(nulls_first=True), "pk")[: max(0, messages_missing())])
    for unit in units:
        search_enqueue(search_id=unit.search_id, units=[unit])
    return len(units)

"""The reconciler: units whose worker vanished are handed out again, lost broker messages resent, and
searches with no live work finished (docs/traps.md, a killed worker)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from search.models import Search, Status, WorkUnit
from search.services.finalize import search_finalize
from search.services.searches import search_enqueue


def units_reconcile() -> dict[str, int]:
    """Hand out again units whose worker vanished (lease expired); finish searches with no live work.

    Runs as a django-q2 schedule every minute, and can be called by hand (`manage.py reconcile`)."""
    now = timezone.now()
    stale = list(WorkUnit.objects.filter(status=Status.RUNNING, lease_until__lt=now).select_related("search"))
    requeued = failed = 0
    for unit in stale:
        if unit.attempt >= settings.FANOUT_MAX_ATTEMPTS:
            failed += WorkUnit.objects.held(unit).update(
                status=Status.FAILED, error=f"worker on {unit.host} stopped answering {unit.attempt} times",
                finished_at=now,
            )  # fmt: skip
        elif WorkUnit.objects.held(unit).update(
            status=Status.QUEUED, error=f"worker on {unit.host} (pid {unit.worker_pid}) stopped answering"
        ):
            search_enqueue(search_id=unit.search_id, units=[unit])
            requeued += 1
    resent = _resend_lost(now)
    finalized = 0
    for search_id in Search.objects.active().values_list("pk", flat=True):
        if not WorkUnit.objects.filter(search_id=search_id, status__in=Status.ACTIVE).exists():
            search_finalize(search_id=search_id)
            finalized += 1
    return {"requeued": requeued, "resent": resent, "failed": failed, "finalized": finalized}


def _resend_lost(now: datetime) -> int:
    """Enqueue again queued units whose message the broker lost.

    Redis drops the running and prefetched tasks of a killed cluster, a rotated SECRET_KEY makes every
    queued message unreadable, and a crash between commit and enqueue sends none (docs/traps.md, a killed worker).
    When the broker holds fewer messages than there are queued units, the units waiting longest are
    sent again; a duplicate costs nothing (the second claim finds the unit taken or done)."""
    from django_q.brokers import get_broker

    before = now - timedelta(seconds=settings.FANOUT_RESEND_SECONDS)
    live = Q(search__status__in=Status.ACTIVE)
    waited = Q(enqueued_at__lt=before) | Q(enqueued_at=None, search__study=None, search__created_at__lt=before)
    waiting = WorkUnit.objects.filter(live, waited, status=Status.QUEUED)
    if not waiting.exists():
        return 0
    missing = WorkUnit.objects.filter(live, status=Status.QUEUED).count() - int(get_broker().queue_size() or 0)
    units = list(waiting.order_by(F("enqueued_at").asc(nulls_first=True), "pk")[: max(0, missing)])
    for unit in units:
        search_enqueue(search_id=unit.search_id, units=[unit])
    return len(units)

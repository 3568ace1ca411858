"""A search limited to k machines (`Search.max_machines`), on the ordinary django-q2 broker.

The broker hands the search's units to whichever cluster asks, as for any search. At claim time a
machine may take a unit only if it already holds a place in the search, or fewer than k machines do;
otherwise it declines: the unit stays queued and its task is sent to the broker again at once, while
the declining worker then waits a short delay, so one of the machines that hold a place picks it up.

A machine holds a place while it has a running unit of the search with a live lease, or finished one
within the last lease period (it is between two units). A machine that died stops renewing its
lease, so once the lease has expired its place is free and another machine takes it over: the run
still finishes, on at most k machines at any time. Leases and finish times are compared on the database's
clock (`Now()`), so a machine whose own clock is off neither loses its place nor takes another's. Machines
are told apart by their name (`engine.run.machine_name`: the hostname, or FANOUT_MACHINE_NAME where clusters
share a machine).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from search.models import Search, Status, WorkUnit
from search.services.searches import search_enqueue

DECLINE_DELAY = 1.0  # seconds before a declined unit's task goes back to the broker


class Declined(Exception):
    """This machine may not take the unit: its search already runs on as many machines as it may use."""


def machines_holding(*, search_id: int) -> set[str]:
    """The machines that hold a place in a search: a live lease, or a unit finished within a lease period."""
    recent = Now() - timedelta(seconds=settings.FANOUT_LEASE_SECONDS)
    held = Q(status=Status.RUNNING, lease_until__gte=Now()) | Q(finished_at__gte=recent)
    hosts = WorkUnit.objects.filter(held, search_id=search_id).exclude(host="").values_list("host", flat=True)
    return set(hosts)


def may_claim(*, unit_id: int, host: str) -> bool:
    """Whether `host` may claim this unit. Call inside the claim's transaction: on PostgreSQL the search
    row is locked so two machines cannot both take the last place (SQLite's BEGIN IMMEDIATE serialises)."""
    row = WorkUnit.objects.filter(pk=unit_id).values_list("search_id", "search__max_machines").first()
    limit = row[1] if row else None
    if row is None or not limit:
        return True
    search_id = row[0]
    list(Search.objects.select_for_update().filter(pk=search_id).values_list("pk", flat=True))
    holders = machines_holding(search_id=search_id)
    return host in holders or len(holders) < limit


def unit_decline(*, unit_id: int, delay: float = DECLINE_DELAY) -> bool:
    """Hand a declined unit back to the broker at once, then keep this worker busy for `delay` seconds.

    The order matters: while the declining worker waits, its cluster's prefetch queue stays full, so the
    message goes to a machine that holds a place. Waiting first held it captive instead: a cluster that
    declined every unit it was offered kept the search's last messages for itself, the machine holding
    the place saw none, and after a lease period without work lost its place to the decliner (CI saw it).
    Nothing is sent if the unit was taken or its search ended (False); `enqueued_at` is renewed with the send."""
    live = Q(status=Status.QUEUED, search__status__in=Status.ACTIVE)
    if not WorkUnit.objects.filter(live, pk=unit_id).update(enqueued_at=timezone.now()):
        return False
    unit = WorkUnit.objects.filter(live, pk=unit_id).first()
    if unit is None:
        return False
    search_enqueue(search_id=unit.search_id, units=[unit])
    time.sleep(delay)  # a busy loop of declines otherwise, while no machine that holds a place is free
    return True

"""The queue by owner, for the admin (issue 15: fair share between users). Reads only."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Now

from search.models import Status, WorkUnit


@dataclass
class OwnerQueue:
    """One owner's live work: searches queued or running, their queued units and fits, running units, hosts."""

    owner: str  # the username, or "" for searches without an owner (runsearch without --owner)
    searches: int = 0
    queued_units: int = 0
    queued_fits: int = 0
    running_units: int = 0
    hosts: list[str] = field(default_factory=list)


def queue_by_owner() -> list[OwnerQueue]:
    """Per owner, the work of their live searches, most running units first (two aggregate queries)."""
    live = WorkUnit.objects.filter(search__status__in=Status.ACTIVE)
    queued = Q(status=Status.QUEUED)
    running = Q(status=Status.RUNNING, lease_until__gte=Now())
    fits = (F("candidate_stop") - F("candidate_start")) * F("search__n_splits")
    rows = (
        live.order_by()
        .values("search__owner__username")
        .annotate(
            searches=Count("search", distinct=True),
            queued_units=Count("pk", filter=queued),
            queued_fits=Sum(fits, filter=queued & Q(kind=WorkUnit.Kind.CV)),
            refits=Count("pk", filter=queued & Q(kind=WorkUnit.Kind.REFIT)),
            running_units=Count("pk", filter=running),
        )
    )
    hosts: dict[str, set[str]] = {}
    for username, host in live.filter(running).values_list("search__owner__username", "host").distinct():
        hosts.setdefault(username or "", set()).add(host)
    out = [
        OwnerQueue(
            owner=row["search__owner__username"] or "", searches=row["searches"], queued_units=row["queued_units"],
            queued_fits=(row["queued_fits"] or 0) + row["refits"], running_units=row["running_units"],
            hosts=sorted(hosts.get(row["search__owner__username"] or "", ())),
        )
        for row in rows
    ]  # fmt: skip
    return sorted(out, key=lambda q: (-q.running_units, -q.queued_units, q.owner))

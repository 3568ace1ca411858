"""Fair share between owners: a unit's message is a turn on the machine that received it, not a claim on
that unit (issue 15; off with FANOUT_FAIR_SHARE=0: first come, first served).

The broker is FIFO, so a search submitted after another user's big one would wait for every unit sent before
it. Instead, when `unit_run(unit_id=…)` is called, the unit claimed is chosen among the waiting units of live
searches (queued, and sent to the broker: a scaling study's later runs, stored but not sent yet, never start
early), in this order:

1. owners by the number of units they have running now (a live lease), fewest first;
2. ties round robin: the owner whose last claim is oldest (max `started_at` of their live searches' units;
   never claimed first); owner None (runsearch without --owner) is one owner of its own;
3. within an owner, the offered unit first when it is theirs (so one owner's units run in the broker's order,
   as without fair share), then their searches oldest first, each by its lowest queued unit index (refit
   units and later halving rounds are units like any other).

A search this machine may not use (`services.machines.may_claim`, Declined) is skipped and the next one tried;
if nothing could be claimed and something was declined, the caller declines that unit as before
(`unit_decline`: its message is sent again). Every claim is still `unit_claim`'s conditional UPDATE, so a unit
is claimed exactly once; a claim lost to another worker reads the order again.

Why the reconciler stays right (services.reconcile, `messages_missing`): the broker owes one message per
queued unit of a live search, and messages are not tied to units any more, only counted. A message that claims
some queued unit lowers both counts by one; a message that finds nothing waiting returns SKIPPED, which only
happens when no unit is queued, so no message was owed for it (or it was a duplicate). The unit named by a
message that went to another unit stays queued with its old `enqueued_at`, but the broker still holds as many
messages as there are queued units, so `_resend_lost` sends nothing for it. A unit running with an expired
lease is not in the fair choice (it is owed no message: the reconciler queues it again and sends one); only a
message naming that very unit (a redelivery) claims it directly, as before."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Now

from search.models import Search, Status, WorkUnit
from search.services.machines import Declined

RACES = 3  # times the order is read again after another worker took the unit chosen first
TURNS = 12  # at most this many units are tried per read of the order


@dataclass(frozen=True)
class Turn:
    unit_id: int
    search_id: int
    owner_id: int | None


@dataclass
class _Owner:
    owner_id: int | None
    running: int = 0
    last: datetime | None = None
    searches: list[tuple[datetime, int, int]] | None = None  # (created_at, search id, lowest waiting index)


def _owners(offered: int) -> list[_Owner]:
    """Owners with a waiting unit, in fair order: one aggregate over the units of live searches."""
    waiting = Q(units__status=Status.QUEUED) & (Q(units__enqueued_at__isnull=False) | Q(units__pk=offered))
    rows = (
        Search.objects.active()
        .order_by()
        .annotate(
            running=Count("units", filter=Q(units__status=Status.RUNNING, units__lease_until__gte=Now())),
            last=Max("units__started_at"),
            first=Min("units__index", filter=waiting),
        )
        .values_list("pk", "owner_id", "created_at", "running", "last", "first")
    )
    owners: dict[int | None, _Owner] = {}
    for pk, owner_id, created_at, running, last, first in rows:
        owner = owners.setdefault(owner_id, _Owner(owner_id, searches=[]))
        owner.running += running
        if last is not None and (owner.last is None or last > owner.last):
            owner.last = last
        if first is not None:
            assert owner.searches is not None
            owner.searches.append((created_at, pk, first))
    live = [o for o in owners.values() if o.searches]
    # never claimed sorts first; owner None after numbered owners on a full tie (any fixed order would do)
    return sorted(live, key=lambda o: (o.running, o.last is not None, o.last or datetime.min, o.owner_id is None,
                                       o.owner_id or 0))  # fmt: skip


def unit_next(*, offered: int, skip: Collection[int] = ()) -> list[Turn]:
    """Units to try for the turn that the message naming `offered` gives, in fair order (see the module's
    docstring); the searches in `skip` are left out. Reads only."""
    offer = (
        WorkUnit.objects.filter(pk=offered, status=Status.QUEUED, search__status__in=Status.ACTIVE)
        .values_list("search_id", flat=True)
        .first()
    )
    picks: list[tuple[int, int, int | None]] = []  # (search id, unit index or -1 for the offered one, owner)
    for owner in _owners(offered):
        assert owner.searches is not None
        searches = sorted(s for s in owner.searches if s[1] not in skip)
        if offer is not None and offer not in skip and any(s[1] == offer for s in searches):
            picks.append((offer, -1, owner.owner_id))
        picks += [(pk, first, owner.owner_id) for _, pk, first in searches]
        if len(picks) >= TURNS:
            break
    picks = picks[:TURNS]
    wanted = Q(pk__in=[])
    for search_id, index, _ in picks:
        wanted |= Q(search_id=search_id, index=index)
    ids = dict(((s, i), pk) for pk, s, i in WorkUnit.objects.filter(wanted).values_list("pk", "search_id", "index"))
    turns: list[Turn] = []
    for search_id, index, owner_id in picks:
        unit_id = offered if index == -1 else ids.get((search_id, index))
        if unit_id is not None and all(t.unit_id != unit_id for t in turns):
            turns.append(Turn(unit_id, search_id, owner_id))
    return turns


def unit_claim_fair(*, offered: int, claim: Callable[..., WorkUnit | None]) -> WorkUnit | None:
    """Claim, with `claim` (services.units.unit_claim), the unit this turn goes to; None when nothing is
    waiting. Raises Declined (naming the offered unit when it was one of them) when every waiting unit belongs
    to searches this machine may not use."""
    expired = Q(status=Status.RUNNING, lease_until__lt=Now(), search__status__in=Status.ACTIVE)
    if WorkUnit.objects.filter(expired, pk=offered).exists():  # a redelivery of a unit whose worker vanished
        return claim(unit_id=offered)
    declined: list[int] = []
    skip: set[int] = set()
    for _ in range(RACES + 1):
        lost = False
        for turn in unit_next(offered=offered, skip=skip):
            try:
                unit = claim(unit_id=turn.unit_id)
            except Declined:
                declined.append(turn.unit_id)
                skip.add(turn.search_id)
                continue
            if unit is not None:
                return unit
            lost = True  # another worker was first: the running counts changed, read the order again
            break
        if not lost:
            break
    if declined:
        raise Declined(offered if offered in declined else declined[0])
    return None

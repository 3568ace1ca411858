"""Unit merging: a claimed unit takes over the short queued units that follow it in its search
(docs/performance.md, unit merging)."""

from __future__ import annotations

from django.conf import settings

from search.models import Result, Status, WorkUnit
from search.services.searches import search_machines


def _seconds_per_fit(search_id: int) -> float | None:
    """Wall seconds per computed fit of the search's finished cross-validation units (claim to finish, so each
    unit's fixed costs count), None before one has finished."""
    done = WorkUnit.objects.filter(
        search_id=search_id, kind=WorkUnit.Kind.CV, status=Status.DONE, fits_run__gt=0
    ).values_list("started_at", "finished_at", "fits_run")
    walls = [((end - start).total_seconds(), fits) for start, end, fits in done if start and end]  # both stamped
    fits = sum(n for _, n in walls)
    return sum(w for w, _ in walls) / fits if fits else None


def merge_following(unit: WorkUnit) -> None:
    """Unit merging (docs/performance.md): the claimed `unit` takes over the queued units that follow it in its
    search (the same round, the next candidates) while, at the search's measured wall time per fit, the merged
    unit stays within FANOUT_UNIT_SECONDS, and the work still queued after them is at least that much for every
    other machine (the tail stays as fine as it was planned). Each unit boundary costs a claim, a hand-off to
    the runner, a final write and a finish (about 0.1 s here), so a search of 0.8-s units loses a tenth of its
    wall time to them. The units taken over are deleted: their messages, when delivered, find nothing to claim
    (SKIPPED), which the reconciler's count of owed messages allows (services.fairshare). Only units never
    claimed are taken (no attempt, no stored fit of theirs); runs inside `unit_claim`'s transaction, the rows
    locked where the database can (PostgreSQL), so two claims never take the same unit."""
    budget = settings.FANOUT_UNIT_SECONDS
    if budget <= 0 or unit.kind != WorkUnit.Kind.CV:
        return
    per_fit = _seconds_per_fit(unit.search_id)
    n_splits = unit.search.n_splits
    if per_fit is None or unit.n_fits * per_fit >= budget:
        return
    queued = list(
        WorkUnit.objects.select_for_update()
        .filter(search_id=unit.search_id, kind=WorkUnit.Kind.CV, round=unit.round, status=Status.QUEUED, attempt=0)
        .order_by("index")
        .values_list("pk", "index", "candidate_start", "candidate_stop")
    )
    if not any(index > unit.index for _, index, _, _ in queued):
        return
    machines = max(1, search_machines(unit.search))
    remaining = sum(stop - start for _, _, start, stop in queued) * n_splits * per_fit
    merged, stop, taken = unit.n_fits * per_fit, unit.candidate_stop, []
    for pk, index, start, end in queued:
        if index < unit.index:
            continue
        cost = (end - start) * n_splits * per_fit
        if start != stop or merged + cost > budget or remaining - cost < (machines - 1) * budget:
            break
        taken.append(pk)
        merged, stop, remaining = merged + cost, end, remaining - cost
    if taken and not Result.objects.filter(unit_id__in=taken).exists():
        WorkUnit.objects.filter(pk__in=taken).delete()
        WorkUnit.objects.filter(pk=unit.pk).update(candidate_stop=stop)
        unit.candidate_stop = stop

"""Fair share between owners (services.fairshare): a unit's message is a turn, given to the owner with the
fewest running units, round robin on ties; within an owner, search by search. Outcomes only, no timings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from search.models import Result, Search, Status, WorkUnit
from search.services.fairshare import unit_claim_fair, unit_next
from search.services.runners import runners_kept
from search.services.searches import messages_missing
from search.services.units import unit_claim, unit_run
from tests.conftest import create_search


def spec(*cs: float) -> dict[str, Any]:
    """One unit per C value (FANOUT_MAX_FITS_PER_UNIT = 2 with cv=2), no refit, fits in the runner itself."""
    grid = {"C": list(cs)}
    return {"estimator": "LogisticRegression", "param_grid": grid, "dataset": "iris", "cv": 2, "refit": False,
            "n_jobs": 1}  # fmt: skip


@pytest.fixture(autouse=True)
def _small_units(settings: Any) -> None:
    settings.FANOUT_MAX_FITS_PER_UNIT = 2
    settings.FANOUT_FAIR_SHARE = True
    settings.FANOUT_UNIT_SECONDS = 0  # turns at the planned grain: merging is tested in tests/services/test_units.py


def sent(search: Search) -> list[int]:
    """Mark the search's units as sent to the broker (as search_enqueue does) and return their messages, FIFO."""
    search.units.update(enqueued_at=timezone.now())
    return list(search.units.order_by("index").values_list("pk", flat=True))


def deliver(messages: list[int]) -> list[tuple[str, int | None]]:
    """Each message's outcome and the search whose unit it ran, in delivery order (one warm runner throughout)."""
    out: list[tuple[str, int | None]] = []
    with runners_kept():
        for unit_id in messages:
            before = set(WorkUnit.objects.filter(status=Status.DONE).values_list("pk", flat=True))
            outcome = unit_run(unit_id=unit_id)
            ran = WorkUnit.objects.filter(status=Status.DONE).exclude(pk__in=before).values_list("search_id", flat=True)
            assert len(ran) <= 1
            out.append((outcome, ran[0] if ran else None))
    return out


def by_owner(runs: list[tuple[str, int | None]]) -> list[str | None]:
    """Whose unit each message ran (the username; None for a search without an owner), or its outcome."""
    owners = dict(Search.objects.values_list("pk", "owner__username"))
    return [owners[search_id] if search_id else outcome for outcome, search_id in runs]


@pytest.mark.django_db
def test_a_small_search_by_a_second_owner_does_not_wait_for_a_big_one(owner: User, other: User) -> None:
    big = create_search(spec(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), owner=owner)
    small = create_search(spec(0.5, 5.0), owner=other)
    messages = sent(big) + sent(small)  # FIFO: every unit of the big search first
    runs = deliver(messages)
    assert by_owner(runs) == ["owner", "other", "owner", "other", "owner", "owner", "owner", "owner"]
    small.refresh_from_db()
    assert small.status == Status.DONE  # after two turns of its own, not after the big search's six units
    assert [s for _, s in runs].index(small.pk) == 1
    for search in (big, small):
        search.refresh_from_db()
        assert search.status == Status.DONE
        cells = list(Result.objects.filter(search=search).values_list("candidate__index", "fold"))
        assert len(cells) == len(set(cells)) == search.n_fits  # every fit stored once
    assert not WorkUnit.objects.filter(status=Status.QUEUED).exists()
    assert WorkUnit.objects.filter(attempt=1).count() == WorkUnit.objects.count()  # each unit claimed once
    assert deliver(messages[:1]) == [("skipped", None)]  # a duplicate finds nothing to do
    assert messages_missing() <= 0


@pytest.mark.django_db
def test_round_robin_among_three_owners(owner: User, other: User) -> None:
    third = User.objects.create_user("third")
    messages: list[int] = []
    for user, cs in ((owner, (0.1, 1.0, 10.0)), (other, (0.2, 2.0, 20.0)), (third, (0.3, 3.0, 30.0))):
        messages += sent(create_search(spec(*cs), owner=user))
    assert by_owner(deliver(messages)) == ["owner", "other", "third"] * 3


@pytest.mark.django_db
def test_searches_without_an_owner_are_one_owner_of_their_own(owner: User) -> None:
    messages = sent(create_search(spec(0.1, 1.0, 10.0))) + sent(create_search(spec(0.2, 2.0), owner=owner))
    messages += sent(create_search(spec(0.3)))  # a second ownerless search waits behind the first
    assert by_owner(deliver(messages)) == ["owner", None, "owner", None, None, None]


@pytest.mark.django_db
def test_an_owner_with_a_running_unit_goes_after_one_with_none(owner: User, other: User, monkeypatch: Any) -> None:
    busy = sent(create_search(spec(0.1, 1.0, 10.0), owner=owner))
    idle = sent(create_search(spec(0.2, 2.0), owner=other))
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "elsewhere")
    assert unit_claim(unit_id=busy[0]) is not None  # running on another machine, with a live lease
    turns = unit_next(offered=busy[1])
    assert [t.unit_id for t in turns][:2] == [idle[0], busy[1]]
    WorkUnit.objects.filter(pk=busy[0]).update(lease_until=timezone.now() - timedelta(seconds=60))
    assert busy[0] not in [t.unit_id for t in unit_next(offered=busy[0])]  # owed no message: not a fair pick
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "here")
    again = unit_claim_fair(offered=busy[0], claim=unit_claim)  # but its own redelivered message takes it over
    assert again is not None and again.pk == busy[0] and again.attempt == 2


@pytest.mark.django_db
def test_within_an_owner_the_older_search_goes_first(owner: User) -> None:
    first = sent(create_search(spec(0.1, 1.0), owner=owner))
    second = sent(create_search(spec(0.2), owner=owner))
    assert [t.unit_id for t in unit_next(offered=second[0])] == [second[0], first[0]]
    assert unit_next(offered=first[1])[0].unit_id == first[1]  # the offered unit, when its owner has the turn
    WorkUnit.objects.filter(pk=first[1]).update(status=Status.DONE)
    assert [t.unit_id for t in unit_next(offered=first[1])] == [first[0], second[0]]  # taken: oldest search first


@pytest.mark.django_db
def test_units_not_sent_yet_wait_for_their_message(owner: User, other: User) -> None:
    """A scaling study's later runs are stored before they are sent: no turn starts them early."""
    sent(create_search(spec(0.1), owner=owner))
    stored_only = create_search(spec(0.2), owner=other)
    offered = WorkUnit.objects.get(search__owner=owner).pk
    assert stored_only.units.get().pk not in [t.unit_id for t in unit_next(offered=offered)]


@pytest.mark.django_db
def test_a_search_this_machine_may_not_use_is_skipped(owner: User, other: User, monkeypatch: Any) -> None:
    limited = sent(create_search(spec(0.1, 1.0), owner=other, max_machines=1))
    free = sent(create_search(spec(0.2, 2.0, 20.0), owner=owner))
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "elsewhere")
    assert unit_claim(unit_id=limited[0]) is not None  # the limited search's only place is taken elsewhere
    assert unit_claim(unit_id=free[0]) is not None and unit_claim(unit_id=free[1]) is not None
    monkeypatch.setenv("FANOUT_MACHINE_NAME", "here")
    assert [t.unit_id for t in unit_next(offered=limited[1])] == [limited[1], free[2]]  # fewer running first
    assert unit_run(unit_id=limited[1]) == "done"  # declined there, so the turn went to the next owner
    assert WorkUnit.objects.get(pk=free[2]).status == Status.DONE
    assert WorkUnit.objects.get(pk=limited[1]).status == Status.QUEUED
    assert unit_run(unit_id=limited[1]) == "declined"  # nothing else waiting: declined and sent again as before


@pytest.mark.django_db
def test_fair_share_off_claims_the_offered_unit(owner: User, other: User, settings: Any) -> None:
    settings.FANOUT_FAIR_SHARE = False
    big = sent(create_search(spec(0.1, 1.0, 10.0), owner=owner))
    small = sent(create_search(spec(0.2), owner=other))
    assert by_owner(deliver(big + small)) == ["owner", "owner", "owner", "other"]

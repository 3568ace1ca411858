"""Per-user limits on queued work (issue 15), checked by `search_create` inside its transaction, so a batch
of `runsearch` specs counts the searches stored before it in the same batch.

FANOUT_MAX_QUEUED_FITS_PER_USER: fits not done yet across the user's queued and running searches, the new one
included. FANOUT_MAX_ACTIVE_SEARCHES_PER_USER: the user's queued and running searches, the new one included.
0 turns a limit off; a search without an owner (`runsearch` without --owner) is not limited."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, F, Sum

from search.engine.spec import SpecError
from search.models import Search

FIELD = "quota"  # the SpecError's field: the API's `field`, the form's error without a field of its own


def quota_check(*, owner: Any, n_fits: int) -> None:
    """Refuse a new search of `n_fits` fits by `owner` over a per-user limit; raises SpecError saying the limit,
    what the user has now and what to do."""
    if owner is None:
        return
    max_searches = settings.FANOUT_MAX_ACTIVE_SEARCHES_PER_USER
    max_fits = settings.FANOUT_MAX_QUEUED_FITS_PER_USER
    if not max_searches and not max_fits:
        return
    active = Search.objects.active().filter(owner=owner)
    row = active.aggregate(n=Count("pk"), left=Sum(F("n_fits") - F("n_fits_done")))
    searches, left = row["n"] or 0, max(0, row["left"] or 0)
    if max_searches and searches + 1 > max_searches:
        raise SpecError(
            FIELD,
            f"you have {searches:,} {'search' if searches == 1 else 'searches'} queued or running; the limit is "
            f"{max_searches:,} per user (FANOUT_MAX_ACTIVE_SEARCHES_PER_USER). Wait for one to finish or cancel one, "
            "then submit again.",
        )
    if max_fits and left + n_fits > max_fits:
        raise SpecError(
            FIELD,
            f"this search's {n_fits:,} fits and the {left:,} not done yet in your queued and running searches "
            f"make {left + n_fits:,}; the limit is {max_fits:,} per user (FANOUT_MAX_QUEUED_FITS_PER_USER). "
            "Wait for your searches to finish, cancel one, or submit fewer fits.",
        )

"""django-q2 tasks: adapters that take ids, load rows and call a service. Results stay in our tables."""

from __future__ import annotations

from search.services.estimates import search_pilot_run
from search.services.predictions import prediction_run
from search.services.reconcile import units_reconcile
from search.services.searches import search_prepare
from search.services.units import unit_run


def run_unit(unit_id: int) -> str:
    return unit_run(unit_id=unit_id).value  # a plain string in django-q2's task row


def prepare_search(search_id: int) -> str:
    # a large search's candidates and units, in batches; a second delivery resumes or finds nothing to do
    return f"{search_prepare(search_id=search_id)} candidates stored"


def run_pilot(search_id: int) -> str:
    return search_pilot_run(search_id=search_id)  # a few fits timed for the estimate; "skipped" if not needed


def run_prediction(prediction_id: int) -> str:
    return prediction_run(prediction_id=prediction_id)  # "done", "failed" (the row says why) or "skipped"


def reconcile() -> dict[str, int]:
    """Kept for messages an earlier version's schedule left in a broker; the reconciler now runs beside the
    queue, in `manage.py fanoutcluster`."""
    return units_reconcile()

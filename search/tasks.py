"""django-q2 tasks: adapters that take ids, load rows and call a service. Results stay in our tables."""

from __future__ import annotations

from search import execution


def run_unit(unit_id: int) -> str:
    return execution.unit_run(unit_id=unit_id)


def reconcile() -> dict[str, int]:
    return execution.units_reconcile()

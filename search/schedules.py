"""The reconciler schedule, created (or kept up to date) after every `migrate`."""

from __future__ import annotations

from typing import Any

RECONCILE = "fanout-reconcile"


def ensure_schedules(**kwargs: Any) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=RECONCILE,
        defaults={"func": "search.tasks.reconcile", "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )

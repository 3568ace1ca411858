"""After every `migrate`: remove the reconcile schedule that earlier versions created.

The reconciler used to be the django-q2 schedule `fanout-reconcile`, a task on the work queue: with every
worker fitting it could not run, and its own message in the broker hid a lost one from `_resend_lost`.
It now runs beside the queue, in each machine's `manage.py fanoutcluster` (services.reconcile)."""

from __future__ import annotations

from typing import Any

RECONCILE = "fanout-reconcile"


def remove_old_schedules(**kwargs: Any) -> None:
    from django_q.models import Schedule

    Schedule.objects.filter(name=RECONCILE).delete()

"""`python manage.py reconcile`: one reconciler pass, as each `fanoutcluster` runs every FANOUT_RECONCILE_SECONDS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from search.services.reconcile import units_reconcile


class Command(BaseCommand):
    help = "Hand out again units whose worker stopped answering, and finish searches with no live work."

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(", ".join(f"{k} {v}" for k, v in units_reconcile().items()))

"""What the broker says about the clusters attached right now."""

from __future__ import annotations


def live_clusters() -> int:
    """How many qclusters (machines) report to the broker right now."""
    from django_q.status import Stat

    try:
        return len({stat.cluster_id for stat in Stat.get_all()})
    except Exception:  # noqa: BLE001 - an unreachable cache only loses the balancing hint
        return 0

"""`python manage.py fanoutcluster`: this machine's cluster. django-q2's `qcluster` runs as a child, the
reconciler runs beside it, and a stop ends every process (docs/traps.md, cancel and stop). Run this, not
`qcluster`, on every machine that does work; `deploy/fanout-qcluster.service` runs it under systemd.

- The reconciler: a thread calls `services.reconcile.units_reconcile` every FANOUT_RECONCILE_SECONDS, whatever
  the workers are doing (it never waits on the work queue). This process looks at the processes below it
  every LOOK_SECONDS; when one of its workers has ended, the reconciler is woken and first hands back the
  units that worker held (a SIGKILLed worker's unit is queued again within about a second, not after its
  lease). Errors are logged, never raised.
- The stop: SIGTERM or SIGINT, to this process alone or to its whole process group. qcluster gets one
  SIGTERM (an idle cluster stops cleanly in about a second); whatever still runs below this process after
  FANOUT_STOP_SECONDS is SIGKILLed, runners and their loky workers included. The units its workers held are
  handed out again at once, and the runners' memory-map folders removed. Exit status 0, or, when qcluster
  ended by itself, its own (so a service manager restarts it).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from project.cluster import become_subreaper, descendants, kill_tree, reap_children
from search.engine.fits import machine_name
from search.services.reconcile import units_reconcile, units_release
from search.services.runners import temp_folders_sweep

log = logging.getLogger(__name__)


class _Below:
    """The processes below this one, looked at every LOOK_SECONDS: those that ended since are kept for the
    reconciler, which hands back the units their workers held (and is woken up for it)."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._ended: set[int] = set()
        self._lock = threading.Lock()
        self.changed = threading.Event()

    def look(self) -> None:
        running = descendants(os.getpid())
        with self._lock:
            gone, self._seen = self._seen - running, running
            self._ended |= gone
        if gone:
            self.changed.set()

    def take_ended(self) -> set[int]:
        with self._lock:
            ended, self._ended = self._ended, set()
        return ended

    def put_back(self, ended: set[int]) -> None:
        with self._lock:
            self._ended |= ended


LOOK_SECONDS = 0.2


def _release(below: _Below) -> int:
    """Hand out again the units held by workers of this cluster that have ended."""
    ended = below.take_ended()
    try:
        return units_release(host=machine_name(), worker_pids=ended) if ended else 0
    except Exception:
        below.put_back(ended)
        raise


def _reconcile_loop(below: _Below, stopping: threading.Event) -> None:
    while not stopping.is_set():
        below.changed.clear()
        try:
            close_old_connections()
            released = _release(below)
            counts = units_reconcile()
            if released or any(counts.values()):
                log.info("reconciled: %s units of ended workers handed out again, %s", released, counts)
        except Exception:  # logged; the next pass tries again
            log.exception("reconcile failed; trying again in %s s", settings.FANOUT_RECONCILE_SECONDS)
            connection.close()
        below.changed.wait(settings.FANOUT_RECONCILE_SECONDS)
    connection.close()


class Command(BaseCommand):
    help = "Run this machine's qcluster with Fanout's reconciler beside it; SIGTERM stops every process."

    def handle(self, *args: Any, **opts: Any) -> None:
        stopping = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        become_subreaper()
        temp_folders_sweep()
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=settings.BASE_DIR)
        below = _Below()
        reconciler = threading.Thread(
            target=_reconcile_loop, args=(below, stopping), name="fanout-reconciler", daemon=True
        )
        reconciler.start()
        log.info("qcluster pid %s; reconciler every %s s", cluster.pid, settings.FANOUT_RECONCILE_SECONDS)
        while not stopping.wait(LOOK_SECONDS):
            reap_children(keep=cluster.pid)
            below.look()
            if cluster.poll() is not None:
                break
        ended_by_itself = not stopping.is_set()
        stopping.set()
        below.changed.set()  # the reconciler's last pass
        code = self._stop(cluster, below)
        reconciler.join(timeout=5)
        if ended_by_itself:
            log.error("qcluster ended by itself (exit status %s)", code)
            sys.exit(code if code > 0 else 128 - code if code < 0 else 1)

    def _stop(self, cluster: subprocess.Popen[bytes], below: _Below) -> int:
        """Stop qcluster and everything below this process within FANOUT_STOP_SECONDS (+ the SIGKILL)."""
        began = time.monotonic()
        below.look()  # every worker running now is remembered
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)  # once: django-q2 stops its own children if it can
        deadline = began + settings.FANOUT_STOP_SECONDS
        while descendants(os.getpid()) and time.monotonic() < deadline:
            reap_children(keep=cluster.pid)
            time.sleep(0.05)
        killed = kill_tree(os.getpid())
        code = cluster.wait()
        reap_children()
        below.look()
        released = 0
        try:
            close_old_connections()
            released = _release(below)
        except Exception:  # their leases expire, and any machine's reconciler hands them out
            log.exception("could not hand the stopped workers' units back")
        temp_folders_sweep()
        log.info(
            "stopped in %.1f s (%s processes SIGKILLed after %s s); %s units handed out again",
            time.monotonic() - began, killed, settings.FANOUT_STOP_SECONDS, released,
        )  # fmt: skip
        return code

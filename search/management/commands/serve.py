"""`python manage.py serve [ADDR:PORT]`: the web app and this machine's cluster, started and stopped together.

This is what `make run` uses on the embedded default. The cluster is `manage.py fanoutcluster` (a qcluster
with the reconciler beside it) in a session of its own, so Ctrl+C reaches this process only; it is stopped
as docs/traps.md, cancel and stop, says: SIGTERM to its main process, which ends every process below it
within FANOUT_STOP_SECONDS, then SIGKILL to its whole process group if anything is left.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from project.cluster import start_qcluster, stop_qcluster


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(0)


class Command(BaseCommand):
    help = "Run the web server and a qcluster together; Ctrl+C stops both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, **opts: Any) -> None:
        signal.signal(signal.SIGTERM, _exit_on_term)
        cluster = start_qcluster(dict(os.environ), log_path=None)
        self.stdout.write(f"qcluster started (pid {cluster.pid}); web server on http://{opts['addrport']}/")
        try:
            call_command("runserver", opts["addrport"], use_reloader=False)
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("stopping the qcluster…")
            stop_qcluster(cluster)
            sys.stdout.flush()

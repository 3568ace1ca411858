"""Settings come from the environment; every variable read is documented in .env.example."""

from __future__ import annotations

import re
import subprocess
import sys

from django.conf import settings

from project import env
from project.cluster import ROOT


def test_every_variable_read_is_documented() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert env.READ, "settings read no variables?"
    assert documented >= env.READ, f"undocumented: {sorted(env.READ - documented)}"


def test_sqlite_is_tuned_for_concurrent_writers() -> None:
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE" and options["timeout"] >= 20
    assert "journal_mode=WAL" in options["init_command"]


def test_broker_never_redelivers_before_our_reconciler() -> None:
    q = settings.Q_CLUSTER
    assert q["retry"] > 3 * q["timeout"]  # else prefetch runs tasks twice (docs/traps.md, at-least-once delivery)
    assert q["timeout"] > settings.FANOUT_UNIT_TIMEOUT
    assert q.get("daemonize_workers", True) is True  # fits run in a runner process, not in the worker
    assert "cpu_affinity" not in q  # it silently pins loky to one core (docs/traps.md, oversubscription and memory)
    assert q["workers"] == 1 and q["queue_limit"] == 1


def test_missing_secret_key_is_a_clear_error() -> None:
    code = "import project.settings"
    clean = {"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "DJANGO_SECRET_KEY must be set" in out.stderr
    bad = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "DJANGO_SECRET_KEY": "x", "FANOUT_LEASE_SECONDS": "soon"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "FANOUT_LEASE_SECONDS='soon': expected an integer" in bad.stderr
